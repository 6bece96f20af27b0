"""The colour table of :mod:`monai_sadaan.io.colour_table` read back."""

from __future__ import annotations

import csv

from monai_sadaan.io import COLOUR_TABLE_COLUMNS, read_colour_table, write_colour_table


# ---------------------------------------------------------------- colour table


def test_colour_table_round_trip(tmp_path):
    path = write_colour_table(None, tmp_path / "colours.csv")
    rows = read_colour_table(path)
    with open(path, newline="") as f:
        header = next(csv.reader(f))
    assert tuple(header) == COLOUR_TABLE_COLUMNS
    assert [r["LabelValue"] for r in rows] == [1, 2, 3, 4, 5]  # background left out
    assert rows[0]["Name"] == "left_kidney"
    assert (rows[0]["Color_R"], rows[0]["Color_G"], rows[0]["Color_B"], rows[0]["Color_A"]) == (212, 126, 151, 255)
    assert (rows[0]["Type_CodeValue"], rows[0]["TypeModifier_CodeValue"]) == ("64033007", "7771000")
    assert (rows[2]["Type_CodingScheme"], rows[2]["Type_CodeValue"], rows[2]["Type_CodeMeaning"]) == (
        "SCT", "10200004", "Liver",
    )  # fmt: skip
    assert rows[2]["TypeModifier_CodeValue"] == "" and rows[2]["Category_CodeValue"] == "123037004"
