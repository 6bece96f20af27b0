"""Absence scenarios of the SADAAn phantoms: which organs a case lacks, and how a partial field of view is cut.

A scenario is a name; its plan (:class:`ScenarioPlan`) says which organs are taken out of the anatomy (surgically
removed: they are simply not drawn, their bed holds fat or bowel) and, for ``"partial_fov"``, where the edge of
the volume cuts through the anatomy. The presence truth of a case is never taken from the plan: the generator
counts the voxels of each structure in the final label map (see ``generate_phantom``'s ``min_voxels``), so an organ
cut to a sliver at the edge counts as absent exactly as the training transforms count it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SCENARIOS",
    "TRUNK_SCENARIOS",
    "REMOVED_BY_SCENARIO",
    "REMOVABLE_ORGANS",
    "FieldOfViewCut",
    "ScenarioPlan",
    "check_scenarios",
    "plan_scenario",
    "plan_fov_cut",
    "LATERAL_ORGANS",
]

SCENARIOS: tuple[str, ...] = (
    "normal",
    "nephrectomy_left",
    "nephrectomy_right",
    "nephrectomy_bilateral",
    "splenectomy",
    "partial_fov",
    "multi_organ_absence",
)
"""The scenarios of the abdominal phantoms (:func:`~monai_sadaan.data.generate_phantom`) and the bundle."""

TRUNK_SCENARIOS: tuple[str, ...] = SCENARIOS + ("pancreatectomy",)
"""The scenarios of the whole-trunk phantoms (:func:`~monai_sadaan.data.trunk.generate_trunk_phantom`): the
abdominal ones plus ``pancreatectomy``, which the abdominal generator does not draw."""

REMOVED_BY_SCENARIO: dict[str, tuple[str, ...]] = {
    "normal": (),
    "nephrectomy_left": ("left_kidney",),
    "nephrectomy_right": ("right_kidney",),
    "nephrectomy_bilateral": ("left_kidney", "right_kidney"),
    "splenectomy": ("spleen",),
    "partial_fov": (),
    "pancreatectomy": ("pancreas",),
}
"""Organs each fixed scenario removes (``multi_organ_absence`` draws its own set)."""

REMOVABLE_ORGANS: tuple[str, ...] = ("left_kidney", "right_kidney", "spleen", "pancreas", "gallbladder", "stomach")
"""Organs a patient can live without (nephrectomy, splenectomy, pancreatectomy, cholecystectomy, gastrectomy):
the pool ``multi_organ_absence`` draws from."""


LATERAL_ORGANS: tuple[str, ...] = ("liver", "spleen", "left_kidney", "right_kidney")
"""Organs a left-right field-of-view cut may clip."""


@dataclass(frozen=True)
class FieldOfViewCut:
    """One edge of the volume moved into the anatomy.

    Attributes:
        axis: RAS patient axis (0 = left-right, 1 = anterior-posterior, 2 = inferior-superior).
        side: +1 cuts the high end (Right / Anterior / Superior), -1 the low end.
        position: world coordinate (mm, RAS) of the new edge; everything beyond it is outside the volume.
        target: the organ the cut was aimed at.
    """

    axis: int
    side: int
    position: float
    target: str


@dataclass(frozen=True)
class ScenarioPlan:
    """What a scenario does to one case.

    Attributes:
        scenario: the scenario's name.
        removed: organs left out of the anatomy.
        fov_cut: for ``"partial_fov"``, where the volume's edge cuts; ``None`` otherwise.
    """

    scenario: str
    removed: tuple[str, ...]
    fov_cut: FieldOfViewCut | None = None


def check_scenarios(scenarios: str | Sequence[str], allowed: Sequence[str] = SCENARIOS) -> tuple[str, ...]:
    """Validate scenario names.

    Args:
        scenarios: one name or a sequence of names.
        allowed: the valid names (default :data:`SCENARIOS`; the trunk generator passes :data:`TRUNK_SCENARIOS`).

    Returns:
        The names as a tuple.

    Raises:
        ValueError: an empty list, or a name that is not in ``allowed``.
    """
    names = (scenarios,) if isinstance(scenarios, str) else tuple(scenarios)
    if not names:
        raise ValueError(f"expected at least one scenario from {', '.join(allowed)}, got none")
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"expected scenarios from {', '.join(allowed)}, got unknown {', '.join(map(repr, unknown))}")
    return names


def plan_scenario(
    scenario: str, rng: np.random.Generator, structures: Mapping[str, int], allowed: Sequence[str] = SCENARIOS
) -> ScenarioPlan:
    """Draw the organ removals of one case (the field-of-view cut is planned later by :func:`plan_fov_cut`, once
    the anatomy is known).

    ``multi_organ_absence`` removes 2 or 3 organs from :data:`REMOVABLE_ORGANS`, preferring the labelled
    ``structures`` so that the absence shows in ``present``; it never draws exactly the pair of a bilateral
    nephrectomy, which has its own scenario.

    Args:
        scenario: a name from :data:`SCENARIOS`.
        rng: the case's random generator.
        structures: the labelled structures (name -> label value).
        allowed: the valid scenario names (default :data:`SCENARIOS`).

    Returns:
        The plan (``fov_cut`` left ``None``).
    """
    check_scenarios(scenario, allowed)
    if scenario != "multi_organ_absence":
        return ScenarioPlan(scenario, REMOVED_BY_SCENARIO[scenario])
    pool = [name for name in REMOVABLE_ORGANS if name in structures]
    if len(pool) < 2:
        pool = list(REMOVABLE_ORGANS)
    count = int(rng.integers(2, min(3, len(pool)) + 1))
    for _ in range(16):
        chosen = tuple(sorted(rng.choice(len(pool), size=count, replace=False).tolist()))
        removed = tuple(pool[i] for i in chosen)
        if set(removed) != {"left_kidney", "right_kidney"}:
            break
    return ScenarioPlan(scenario, removed)


def plan_fov_cut(
    rng: np.random.Generator,
    extents: Mapping[str, np.ndarray],
    candidates: Sequence[str],
    axis_probabilities: Sequence[float] = (0.2, 0.0, 0.8),
    absent_probability: float = 0.35,
) -> FieldOfViewCut:
    """Choose an edge of the volume that cuts through (or past) one organ.

    The target organ is drawn from ``candidates``. Along the inferior-superior (or anterior-posterior) axis, with
    ``absent_probability`` the edge moves in from the end of the organ block nearer to the target and stops just
    past it, so that the target leaves the volume and the organs on the other side stay (the liver leaves through
    the top, the kidneys through the bottom); otherwise the edge lies between 20% and 75% of the way through the
    organ, from either end, so that the organ is cut. A left-right cut
    (a patient wider than the scan's field of view) only clips a lateral organ (liver, spleen, kidneys) by 15% to
    50%: pushing one fully out would cut the body in half.

    Args:
        rng: the case's random generator.
        extents: organ name -> array (3, 2) of its [low, high] world extent (mm, RAS) per patient axis.
        candidates: organs that may be the target (present in the anatomy).
        axis_probabilities: chance of cutting along the left-right, anterior-posterior and inferior-superior axes.
        absent_probability: chance that the target leaves the volume entirely.

    Returns:
        The cut.
    """
    if not candidates:
        raise ValueError("expected at least one organ to cut for the partial field of view, got none")
    p = np.asarray(axis_probabilities, dtype=float)
    axis = int(rng.choice(3, p=p / p.sum()))
    lateral = [name for name in candidates if name in LATERAL_ORGANS]
    if axis == 0 and not lateral:
        axis = 2
    pool = lateral if axis == 0 else list(candidates)
    target = str(pool[int(rng.integers(len(pool)))])
    low, high = (float(v) for v in extents[target][axis])
    absent_draw, fraction_draw = rng.random(), rng.random()
    if axis == 0:
        # clip the side the organ lies on (the liver at the patient's right, the spleen at the left)
        side = 1 if (low + high) > 0 else -1
        fraction = 0.15 + 0.35 * fraction_draw
    elif absent_draw < absent_probability:
        # push the organ out through the nearer end of the organ block, keeping the organs beyond it
        block = np.stack([extents[name][axis] for name in candidates])
        side = 1 if (low + high) > (block[:, 0].min() + block[:, 1].max()) else -1
        fraction = 1.0 + 0.05 * fraction_draw
    else:
        side = 1 if rng.random() < 0.5 else -1
        fraction = 0.2 + 0.55 * fraction_draw
    # side +1 keeps everything below the edge: the edge moves down from the organ's top
    position = high - fraction * (high - low) if side > 0 else low + fraction * (high - low)
    return FieldOfViewCut(axis=axis, side=side, position=position, target=target)
