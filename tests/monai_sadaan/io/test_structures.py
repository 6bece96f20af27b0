"""The structure table of :mod:`monai_sadaan.io.structures`: codes, labels, colours and terminology strings that
slicerio parses back, and its colour table CSV read back."""

from __future__ import annotations

import csv

import pytest
from slicerio.segmentation import terminology_entry_from_string

from monai_sadaan.io import (
    COLOUR_TABLE_COLUMNS,
    DEFAULT_STRUCTURE_NAMES,
    read_colour_table,
    structure_colours,
    structure_info,
    structure_table,
    terminology_dict,
    terminology_string,
    write_colour_table,
)


# ---------------------------------------------------------------- structure table / terminology


def test_default_structure_table_codes_and_labels():
    table = structure_table()
    assert [s.name for s in table] == list(DEFAULT_STRUCTURE_NAMES)
    assert [s.label for s in table] == [1, 2, 3, 4, 5]
    by_name = {s.name: s for s in table}
    assert by_name["left_kidney"].type == ("SCT", "64033007", "Kidney")
    assert by_name["left_kidney"].type_modifier == ("SCT", "7771000", "Left")
    assert by_name["right_kidney"].type_modifier == ("SCT", "24028007", "Right")
    assert by_name["liver"].type[1] == "10200004"
    assert by_name["spleen"].type[1] == "78961009"
    assert by_name["pancreas"].type[1] == "15776009"
    assert all(s.category == ("SCT", "123037004", "Anatomical Structure") for s in table)
    colours = structure_colours()
    assert len(set(colours.values())) == 5  # both kidneys are told apart


def test_terminology_string_parses_back_with_slicerio():
    for info in structure_table():
        parsed = terminology_entry_from_string(terminology_string(info))
        assert parsed == terminology_dict(info)
    s = terminology_string(structure_info("left_kidney", 1))
    assert s.split("~")[1:4] == ["SCT^123037004^Anatomical Structure", "SCT^64033007^Kidney", "SCT^7771000^Left"]


def test_unknown_structure_falls_back_to_tissue_and_palette():
    table = structure_table({"liver": 1, "gallbladder": 7})
    assert table[1].label == 7 and table[1].type == ("SCT", "85756007", "Tissue")
    assert table[1].type_modifier is None
    assert table[1].colour != table[0].colour


@pytest.mark.parametrize(
    "structures, message",
    [
        (["liver", "liver"], "unique structure names"),
        ({"liver": 1, "spleen": 1}, "unique label values"),
        (["liver|x"], "reserved"),
        ({"liver": 0}, "positive integer"),
        ([], "at least one"),
        ("liver", "single string"),
    ],
)
def test_structure_table_rejects_bad_input(structures, message):
    with pytest.raises(ValueError, match=message):
        structure_table(structures)


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
