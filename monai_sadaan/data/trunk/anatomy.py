"""The trunk's anatomy: one patient drawn from statistical templates, and its painting onto a :class:`Canvas`.

Frame: world mm, RAS+; the vertebral column runs along ``z`` near ``x = 0``, the centre of the L1 vertebral body is
at ``z = 0`` and ``y = 0``. Every position is tied to a landmark (a vertebral level, the diaphragm, the femoral
heads) so that relative positions follow the anatomy texts: kidneys beside the spine at T12-L3 with the right one
lower, the liver under the right hemidiaphragm down to L1-L3, the spleen posterior-left at ribs 9-11, the pancreas
across L1-L2 from the duodenal C-loop to the splenic hilum, the heart on the central tendon, the bladder in the
pelvis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..geometry import rotation_matrix
from .canvas import KEEP, Canvas, Deform, Ellipsoid, Tube

__all__ = ["Patient", "sample_patient", "render_patient", "LABELLED_ORGANS"]

LABELLED_ORGANS: tuple[str, ...] = (
    "left_kidney", "right_kidney", "liver", "spleen", "pancreas", "gallbladder", "stomach",
)  # fmt: skip
"""Organs with a template whose world extent the field of view is planned from."""

_SOFT = ("visceral_fat",)
_FREE = ("visceral_fat", "fat")
_DEG = math.pi / 180.0


def _interp(z: np.ndarray, knots: Sequence[tuple[float, float]]) -> np.ndarray:
    k = sorted(knots)
    return np.interp(z, [a for a, _ in k], [b for _, b in k]).astype(np.float32)


@dataclass
class Vertebra:
    """One vertebra: body z range, half-width / half-depth, canal radius, process lengths (mm)."""

    name: str
    z_top: float
    z_bot: float
    rx: float
    ry: float
    canal: float
    spinous: float
    transverse: float

    @property
    def z_mid(self) -> float:
        return 0.5 * (self.z_top + self.z_bot)


@dataclass
class Patient:
    """Everything drawn about one patient (mm, patient frame)."""

    vertebrae: list[Vertebra]
    level_z: dict[str, float]
    spine_knots: list[tuple[float, float]]  # z -> y of the vertebral body centre
    scoliosis: tuple[float, float, float]  # amplitude, wavelength, phase of x_s(z)
    body: dict[str, list[tuple[float, float]]]  # profile name -> knots (z, value)
    fat: float
    pelvis_width: float
    female: bool
    arms_down: bool
    z_top: float
    z_bottom: float
    z_split: float
    z_fh: float
    z_floor: float
    z_apex: float
    sacrum_top: float
    domes: dict[str, tuple[float, float, float]]  # side -> apex x, y, z
    dome_curv: tuple[float, float, float]  # lateral, anterior, posterior curvature (mm drop at 100 mm)
    organs: dict[str, Ellipsoid]
    tubes: dict[str, Tube]
    liver: dict
    spleen_carve: Ellipsoid
    kidney_bend: dict[str, float]
    bowel: list[Tube]
    gas_bubbles: list[np.ndarray]
    clips: list[np.ndarray]
    bed_loops: list[Tube]
    ribs: list[tuple[int, Tube, Tube | None]]
    extras: dict = field(default_factory=dict)
    bowel_lumen_shrink: list[float] = field(default_factory=list)  # per loop of ``bowel``: wall thickness (mm)

    # ---- profiles -------------------------------------------------------------------------------------------------
    def spine_xy(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        amp, wl, ph = self.scoliosis
        x = (amp * np.sin(2 * math.pi * (np.asarray(z) - self.z_bottom) / wl + ph)).astype(np.float32)
        return x, _interp(z, self.spine_knots)

    def prof(self, name: str, z: np.ndarray) -> np.ndarray:
        return _interp(z, self.body[name])

    def outer_extent_xy(self, z0: float, z1: float) -> tuple[float, float, float]:
        """Largest half-width and the lowest / highest y of the skin between z0 and z1 (arms excluded)."""
        z = np.linspace(z0, z1, 48)
        _, ys = self.spine_xy(z)
        a = self.prof("a", z) + self.prof("fat_lat", z)
        front = ys + self.prof("front", z) + self.prof("fat_ant", z)
        back = ys - self.prof("back", z) - self.prof("fat_post", z)
        if self.female:
            chest = (z > self.level_z["T7"]) & (z < self.level_z["T2"])
            front = np.where(chest, front + self.extras["breast_proj"], front)
        return float(a.max()), float(back.min()), float(front.max())

    def dome_z(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Height (mm) of the diaphragm above (X, Y): the higher of the two domes."""
        lat, ant, post = self.dome_curv
        out = None
        for side in ("right", "left"):
            ax, ay, az = self.domes[side]
            dy = Y - np.float32(ay)
            k_y = np.where(dy > 0, np.float32(ant / 1e4), np.float32(post / 1e4))
            z = np.float32(az) - np.float32(lat / 1e4) * (X - np.float32(ax)) ** 2 - k_y * dy * dy
            out = z if out is None else np.maximum(out, z)
        return out

    def organ_extent(self, name: str) -> np.ndarray:
        """World extent (3, 2) of a labelled organ's template (conservative)."""
        if name == "liver":
            return np.asarray(self.liver["extent"], dtype=float)
        if name in self.organs:
            return self.organs[name].extent()
        return self.tubes[name].extent()


# ====================================================================================================================
# sampling
# ====================================================================================================================
def _spine(rng: np.random.Generator, s: float) -> tuple[list[Vertebra], dict[str, float], float]:
    u = rng.uniform
    names = ["C5", "C6", "C7"] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
    verts = []
    z = 0.0
    for i, name in enumerate(names):
        if name.startswith("C"):
            h, disc, rx, ry, canal, sp, tp = 13.0, 5.0, 11.0, 8.0, 8.0, 22.0, 14.0
        elif name.startswith("T"):
            t = (int(name[1:]) - 1) / 11.0
            h, disc, rx, ry = 16.0 + 7.0 * t, 4.0 + 2.0 * t, 13.0 + 8.0 * t, 10.0 + 5.5 * t
            canal, sp, tp = 7.0, 30.0, 20.0
        else:
            t = (int(name[1:]) - 1) / 4.0
            h, disc, rx, ry = 26.0 + 4.0 * t, 10.0 + 1.5 * t, 22.0 + 3.0 * t, 16.0 + 2.0 * t
            canal, sp, tp = 9.0, 26.0, 24.0 - 5.0 * abs(t - 0.5)
        h, disc = h * s * u(0.95, 1.05), disc * s * u(0.85, 1.15)
        verts.append(Vertebra(name, z, z - h, rx * u(0.93, 1.07), ry * u(0.93, 1.07), canal * u(0.9, 1.1), sp, tp))
        z = z - h - disc
    sacrum_top = z  # after the L5/S1 disc
    shift = -verts[names.index("L1")].z_mid
    for v in verts:
        v.z_top += shift
        v.z_bot += shift
    levels = {v.name: v.z_mid for v in verts}
    return verts, levels, sacrum_top + shift


def sample_patient(rng: np.random.Generator, removed: Sequence[str]) -> Patient:
    """Draw a patient. Removed organs are still drawn (the rest of the anatomy does not depend on the scenario) and
    left out when painting; their beds get fat, displaced bowel and surgical clips.

    Args:
        rng: the case's anatomy random stream.
        removed: organs the scenario takes out.

    Returns:
        The :class:`Patient`.
    """
    u = rng.uniform
    removed = set(removed)
    s = u(0.9, 1.1)  # height scale
    w = u(0.9, 1.1)  # width scale
    d = u(0.9, 1.1)  # depth scale
    fat = float(rng.beta(1.6, 2.2))  # 0 thin .. 1 obese
    female = bool(rng.random() < 0.5)
    pw = u(1.0, 1.12) if female else u(0.9, 1.02)
    arms_down = bool(rng.random() < 0.3)
    verts, L, sacrum_top = _spine(rng, s)
    V = {v.name: v for v in verts}

    # spine curvature: y of the vertebral body centre (lordosis / kyphosis), scoliosis in x
    sp_y = [(V["C5"].z_mid, u(10, 25)), (V["T1"].z_mid, u(-5, 5)), (V["T7"].z_mid, u(-35, -15)),
            (V["T12"].z_mid, u(-12, 0)), (V["L3"].z_mid, u(5, 18)), (V["L5"].z_mid, u(0, 10)),
            (sacrum_top, u(-10, 0))]
    sac_len = 105.0 * s
    for f_, dy in ((0.35, -22.0), (0.7, -45.0), (1.0, -52.0), (1.3, -42.0)):
        sp_y.append((sacrum_top - f_ * sac_len, sp_y[6][1] + dy + u(-5, 5)))  # the sacrum curves backwards
    z_fh = sacrum_top - u(85, 100) * s
    z_floor = z_fh - u(45, 60) * s
    z_split = z_floor - u(5, 20)
    z_bottom = z_split - 120.0
    z_top = V["C5"].z_top + 15.0
    sp_y.append((z_bottom, sp_y[-1][1]))
    sp_y.append((z_top + 50.0, sp_y[0][1]))
    scol = (u(0, 10) if rng.random() < 0.35 else u(0, 3), u(350, 700), u(0, 2 * math.pi))
    z_apex = V["T1"].z_top + u(15, 30)

    # body profiles: core = outer surface of the muscles; a half-width, front / back = distance from the spine
    obese_abd = 1.0 + 0.6 * fat**1.3
    core = [
        ("C5", 52, 55, 45), ("C7", 62, 60, 50), ("T1", 95 if arms_down else 85, 72, 55), ("T2", 125, 92, 60),
        ("T4", 135, 118, 62), ("T7", 140, 140, 62), ("T10", 142, 150, 62), ("L1", 138, 150 * obese_abd, 68),
        ("L3", 136 + 20 * fat, 148 * obese_abd, 70), ("L5", 142 + 22 * fat, 140 * obese_abd, 68),
    ]  # fmt: skip
    a_k, f_k, b_k = [], [], []
    for name, a, fr, bk in core:
        z = L[name]
        a_k.append((z, a * w))
        f_k.append((z, fr * d))
        b_k.append((z, bk * d))
    for z, a, fr, bk in ((sacrum_top - 30, 150 * pw, 130, 62), (z_fh, 158 * pw, 112, 70),
                         (z_split, 150 * pw, 100, 75), (z_bottom, 150 * pw, 100, 75)):
        a_k.append((z, a * w + 15 * fat))
        f_k.append((z, fr * d + 20 * fat))
        b_k.append((z, bk * d))
    a_k.append((z_top + 60, 52 * w))
    f_k.append((z_top + 60, 55 * d))
    b_k.append((z_top + 60, 45 * d))
    t_fat = 4.0 + 42.0 * fat**1.5
    region = [(z_top + 60, 0.35), (L["T1"], 0.5), (L["T6"], 0.7), (L["T11"], 0.9), (L["L3"], 1.0),
              (z_fh, 1.05), (z_bottom, 1.0)]
    fat_lat = [(z, t_fat * r * (1.2 if z < L["L5"] else 1.0)) for z, r in region]
    fat_ant = [(z, t_fat * r * (1.5 if L["T10"] > z > z_fh else 1.0)) for z, r in region]
    fat_post = [(z, t_fat * r * 0.8) for z, r in region]
    # muscle layer and cavity: the cavity is what lies inside the ribs / abdominal wall
    m_lat = [(z_top + 60, 30), (L["T1"], 30), (L["T3"], 15), (L["T10"], 13), (L["L3"], 14),
             (sacrum_top, 25), (z_fh, 55 * pw), (z_bottom, 60)]
    m_ant = [(z_top + 60, 20), (L["T2"], 28), (L["T6"], 16), (L["T10"], 12), (L["L3"], 11), (z_fh, 14),
             (z_bottom, 20)]
    c_back = [(z_top + 60, 30), (L["T1"], 32), (L["T6"], 38), (L["T12"], 34), (L["L4"], 28),
              (sacrum_top, 5), (z_fh, -10), (z_bottom, -10)]
    body = {"a": a_k, "front": f_k, "back": b_k, "fat_lat": fat_lat, "fat_ant": fat_ant, "fat_post": fat_post,
            "m_lat": m_lat, "m_ant": m_ant, "c_back": c_back}

    def at(name: str, z: float) -> float:
        return float(_interp(np.array([z]), body[name])[0])

    def spine_y(z: float) -> float:
        return float(_interp(np.array([z]), sp_y)[0])

    def cav(z: float) -> tuple[float, float, float]:
        """Cavity half-width, front y, back y at z (spine x ignored)."""
        ys = spine_y(z)
        return at("a", z) - at("m_lat", z), ys + at("front", z) - at("m_ant", z), ys - at("c_back", z)

    # diaphragm: right dome at about T9, left 1-2 cm lower; descends far posteriorly into the recesses
    a9, fr9, bk9 = cav(L["T9"])
    y_apex = 0.5 * (fr9 + bk9) + u(0, 15)
    domes = {
        "right": (u(45, 70) * w, y_apex, 0.5 * (V["T8"].z_bot + V["T9"].z_top) + u(-12, 12) * s),
        "left": (-u(50, 75) * w, y_apex, 0.0),
    }
    domes["left"] = (domes["left"][0], y_apex, domes["right"][2] - u(5, 25))
    dome_curv = (u(80, 110), u(30, 55), u(60, 90))
    z_dome_r, z_dome_l = domes["right"][2], domes["left"][2]

    organs: dict[str, Ellipsoid] = {}
    tubes: dict[str, Tube] = {}

    def dfm(amp: float, wl=(60.0, 160.0), n: int = 3) -> Deform:
        return Deform.sample(rng, amp, wl, n)

    # kidneys: bean-shaped superellipsoids beside the spine; upper pole medial and posterior, hilum anteromedial
    hyper = 1.12 if len({"left_kidney", "right_kidney"} & removed) == 1 else 1.0
    z_lk = 0.5 * (V["L1"].z_mid + V["T12"].z_mid) + u(-15, 15) * s
    z_rk = z_lk - u(8, 25) * s
    kidney_bend = {}
    for name, sigma, zc in (("left_kidney", -1.0, z_lk), ("right_kidney", 1.0, z_rk)):
        semi = np.array([u(30, 37), u(22, 27), u(55, 66) * s])  # about 6-7.5 x 4.5-5.5 x 11-13 cm
        if name not in removed:
            semi = semi * hyper
        xs_ = sigma * (V["L1"].rx + u(42, 56))
        ys_ = spine_y(zc) - u(0, 14)
        rot = rotation_matrix(u(-15, -5) * _DEG, sigma * u(-20, -8) * _DEG, sigma * u(20, 40) * _DEG)
        organs[name] = Ellipsoid(np.array([xs_, ys_, zc]), semi, rot, dfm(3.0, (50, 120)), exponent=2.0)
        kidney_bend[name] = u(0.15, 0.3)

    # liver: a wedge under the right hemidiaphragm, left lobe anterior across the midline
    z_liver_low = L["L2"] + u(-30, 25) * s
    liver = {
        "z_low": z_liver_low,  # inferior tip of the right lobe (lateral, posterior)
        "z_left": z_dome_l - u(25, 55),  # inferior edge at the left lobe's tip
        "x_left": -u(45, 100) * w,  # reach of the left lobe
        "power": u(1.2, 2.0),
        "deform": dfm(9.0, (80, 200)),
        "post_gap": u(0.0, 8.0),
    }
    a_c, _, _ = cav(L["T11"])
    liver["extent"] = np.array([[liver["x_left"] - 15, a_c + 12], [spine_y(L["T11"]) - 60, spine_y(L["T11"]) + 200],
                                [z_liver_low - 20, z_dome_r + 5]])

    # spleen: crescent against the posterolateral left wall at ribs 9-11, concave visceral surface
    zs = V["T11"].z_mid + u(-12, 12) * s
    a_s, fr_s, bk_s = cav(zs)
    theta = u(200, 225) * _DEG  # angle around the cavity centre (180 = left lateral, 270 = posterior)
    cy_s = 0.5 * (fr_s + bk_s)
    bb = 0.5 * (fr_s - bk_s)
    thick, width, length = u(18, 25), u(40, 52), u(50, 62) * s
    wall = np.array([a_s * math.cos(theta), cy_s + bb * math.sin(theta)])
    n_in = -np.array([math.cos(theta) / a_s, math.sin(theta) / bb])
    n_in /= np.linalg.norm(n_in)
    sc = np.array([wall[0] + n_in[0] * (thick + 3), wall[1] + n_in[1] * (thick + 3), zs])
    tang = np.array([-n_in[1], n_in[0], 0.0])
    nrm = np.array([n_in[0], n_in[1], 0.0])
    tilt = u(25, 45) * _DEG  # long axis: superior-posterior to inferior-anterior
    ax_long = math.cos(tilt) * np.array([0, 0, 1.0]) + math.sin(tilt) * (-tang if tang[1] < 0 else tang) * -1.0
    ax_long /= np.linalg.norm(ax_long)
    ax_t = np.cross(ax_long, nrm)
    ax_t /= np.linalg.norm(ax_t)
    rot_s = np.stack([nrm, ax_t, ax_long], axis=1)
    spl_def = dfm(4.0, (40, 100))
    organs["spleen"] = Ellipsoid(sc, np.array([thick, width, length]), rot_s, spl_def)
    carve = Ellipsoid(sc + nrm * thick * u(1.5, 1.9), np.array([thick * 1.5, width * 0.95, length * 0.85]), rot_s,
                      spl_def)
    hilum = sc + nrm * thick * 0.8

    # stomach: fundus under the left dome, body down the left, antrum across to the pylorus right of the midline
    ysT11 = spine_y(L["T11"])
    _, frL1, _ = cav(L["L1"])
    cyL1 = 0.5 * (frL1 + spine_y(L["L1"]))
    st_pts = np.array([
        [-u(22, 32), ysT11 + u(25, 35), L["T11"] + 5],
        [-u(45, 60) * w, ysT11 + u(15, 30), z_dome_l - u(30, 40)],
        [-u(60, 75) * w, ysT11 + u(45, 60), L["T12"]],
        [-u(50, 65) * w, cyL1 + u(15, 30), L["L1"] - u(0, 15)],
        [-u(20, 35), frL1 - u(30, 45), L["L2"] - u(0, 25)],
        [u(5, 15), frL1 - u(30, 45), L["L1"] - u(0, 15)],
        [u(22, 32), cyL1 + u(5, 15), L["L1"]],
    ])  # fmt: skip
    fill = u(0.75, 1.2)
    st_r = np.array([14, 38, 33, 30, 24, 18, 11]) * fill
    st_r[0] = 12.0
    tubes["stomach"] = Tube.through(st_pts, st_r, step=6.0)
    if "spleen" in removed:  # the stomach and the splenic flexure move into the left upper quadrant
        tubes["stomach"] = Tube.through(st_pts + np.array([-12, -15, 0.0]) * (st_pts[:, 0:1] < -40), st_r * 1.1, 6.0)
    organs["stomach_box"] = Ellipsoid(st_pts.mean(axis=0), np.ptp(st_pts, axis=0) / 2 + 45, np.eye(3), Deform.none())

    # duodenum: C-loop around the pancreatic head
    ysL2 = spine_y(L["L2"])
    ry2 = V["L2"].ry
    duo = np.array([
        st_pts[-1],
        [u(38, 48), ysL2 + ry2 + u(35, 45), L["L1"] - 5],
        [u(48, 60), ysL2 + ry2 + u(18, 28), L["L2"]],
        [u(45, 55), ysL2 + ry2 + u(15, 22), L["L3"]],
        [u(10, 20), ysL2 + ry2 + u(18, 24), L["L3"] - 5],
        [-u(15, 25), ysL2 + ry2 + u(20, 26), L["L3"]],
        [-u(30, 40), ysL2 + ry2 + u(25, 35), L["L2"] - 5],
    ])  # fmt: skip
    tubes["duodenum"] = Tube.through(duo, np.array([11, 12, 13, 13, 12, 11, 11]) * u(0.8, 1.1), 6.0)

    # pancreas: head in the C-loop, neck before the portal confluence, body over the aorta, tail to the splenic hilum
    ysL1 = spine_y(L["L1"])
    ry1 = V["L1"].ry
    tail = hilum + np.concatenate([n_in * 8, [-4]])  # just short of the splenic hilum
    pan = np.array([
        [duo[3, 0] - u(18, 24), duo[3, 1] + u(5, 12), L["L2"] - u(10, 20)],
        [duo[2, 0] - u(20, 26), duo[2, 1] + u(10, 18), L["L2"] + u(0, 10)],
        [u(0, 10), ysL1 + ry1 + u(42, 55), L["L1"] + u(-5, 8)],
        [-u(25, 35), ysL1 + ry1 + u(30, 42), L["L1"] + u(5, 15)],
        [0.5 * (-30 + tail[0]), 0.5 * (ysL1 + ry1 + 30 + tail[1]), 0.5 * (L["L1"] + 10 + tail[2])],
        tail,
    ])  # fmt: skip
    pan_r = np.array([u(13, 17), u(14, 18), u(9, 12), u(9, 12), u(8, 11), u(7, 10)])
    tubes["pancreas"] = Tube.through(pan, pan_r, 5.0)
    organs["pancreas_lob"] = Ellipsoid(np.zeros(3), np.ones(3), np.eye(3), dfm(2.5, (15, 30), 4))

    # gallbladder: pear on the liver's inferior surface, fundus anterior-inferior
    gb_c = np.array([u(35, 60) * w, frL1 - u(25, 45), L["L1"] + u(-5, 20)])
    organs["gallbladder"] = Ellipsoid(gb_c, np.array([u(12, 18), u(12, 18), u(32, 45)]),
                                      rotation_matrix(u(-70, -45) * _DEG, u(-20, 10) * _DEG, 0.0), dfm(2.0, (30, 60)))

    # adrenals: thin limbs above-medial of the upper poles
    for name, sigma in (("left_adrenal", -1.0), ("right_adrenal", 1.0)):
        k = organs["left_kidney" if sigma < 0 else "right_kidney"]
        top = k.centre + k.rot[:, 2] * k.semi[2] * 0.85
        apex = np.array([sigma * (V["T12"].rx + u(14, 22)), top[1] + u(10, 20), top[2] + u(15, 25)])
        tubes[name] = Tube(np.array([top + np.array([sigma * 5, 8, 0]), apex, top + np.array([-sigma * 8, 0, 5])]),
                           np.array([u(2.5, 3.5), u(3, 4.5), u(2.5, 3.5)]))

    # heart on the central tendon, left-shifted, long axis to the left, anterior and inferior
    zc_heart = min(z_dome_r, z_dome_l) + u(45, 60) * s
    _, fr7, bk7 = cav(L["T7"])
    hc = np.array([-u(10, 25), 0.5 * (fr7 + bk7) + u(15, 30), zc_heart])
    axis = np.array([-0.65, 0.55, -0.5])
    axis /= np.linalg.norm(axis)
    a2 = np.cross(axis, [0, 0, 1.0])
    a2 /= np.linalg.norm(a2)
    a3 = np.cross(axis, a2)
    rot_h = np.stack([axis, a2, a3], axis=1)
    hs = u(0.9, 1.12)
    organs["heart"] = Ellipsoid(hc, np.array([62, 48, 42]) * hs, rot_h, dfm(3.0, (60, 120)))

    # great vessels and the vertebral-column-following ones (aorta, IVC) as centreline tubes
    zs_T4, zs_T12, zs_L4 = L["T4"], L["T12"], L["L4"]
    r_ao = u(0.85, 1.15)
    asc_top = np.array([u(0, 12), hc[1] + u(5, 15), V["T4"].z_mid])
    ao = [hc + rot_h[:, 0] * -30 + np.array([15, 10, 25]), asc_top + np.array([0, 0, -30]), asc_top + [0, 5, 12],
          [-15, spine_y(zs_T4) + 35, V["T3"].z_mid + 10], [-22, spine_y(zs_T4) + V["T4"].ry + 8, zs_T4 - 5]]
    for lv in ("T6", "T8", "T10", "T12", "L1", "L2", "L3"):
        v = V[lv]
        x_ao = -min(20.0, v.rx * 0.9) if lv in ("T6", "T8") else -10.0  # left of the spine, then in front of it
        ao.append([x_ao, spine_y(v.z_mid) + v.ry + 12, v.z_mid])
    ao.append([-6, spine_y(zs_L4) + V["L4"].ry + 10, zs_L4])
    ao_r = [15, 16, 15, 13, 12.5, 12, 11.5, 11, 10.5, 10, 9.5, 9, 8.5]
    tubes["aorta"] = Tube.through(np.array(ao, dtype=float), np.array(ao_r[: len(ao)]) * r_ao, 8.0)
    # iliac arteries: bifurcation at L4, along the pelvic brim to the femoral heads
    fh_x = u(82, 95) * pw * w
    y_fh = spine_y(z_fh) + u(55, 75) * d
    for sigma in (-1.0, 1.0):
        pts = [ao[-1], [sigma * 30, spine_y(sacrum_top) + 30, sacrum_top + 5],
               [sigma * 55 * pw, spine_y(sacrum_top - 40) + 55, sacrum_top - 45],
               [sigma * (fh_x - 5), y_fh + 35, z_fh + 10], [sigma * (fh_x - 5), y_fh + 40, z_bottom]]
        tubes[f"iliac_artery_{sigma:+.0f}"] = Tube.through(np.array(pts, dtype=float), [7, 6, 5.5, 5, 5], 8.0)
        vpts = [[12.0 + sigma * 8.0, spine_y(L["L5"]) + V["L5"].ry + 4, L["L5"]]] + [
            [q[0] - sigma * 6.0, q[1] - 9.0, q[2]] for q in pts[1:]]
        tubes[f"iliac_vein_{sigma:+.0f}"] = Tube.through(np.array(vpts, dtype=float), [9, 8.5, 8, 7, 6.5], 8.0)
    # IVC: right atrium down the right of the aorta to L5
    ivc = [[u(15, 25), hc[1] - 25, z_dome_r + 10], [u(18, 26), spine_y(L["T11"]) + V["T11"].ry + 20, L["T11"]]]
    for lv in ("L1", "L2", "L3", "L4"):
        v = V[lv]
        ivc.append([v.rx * 0.9 + u(0, 6), spine_y(v.z_mid) + v.ry + 10, v.z_mid])
    ivc.append([18, spine_y(L["L5"]) + V["L5"].ry + 6, L["L5"]])
    tubes["inferior_vena_cava"] = Tube.through(np.array(ivc, dtype=float), [13, 12, 11.5, 11, 11, 10.5, 10], 8.0)
    tubes["svc"] = Tube.through(np.array([[u(15, 25), asc_top[1] - 5, V["T1"].z_top + 10], [u(18, 28), asc_top[1] - 10,
                                hc[2] + 35]]), [9, 10], 8.0)
    pt = [hc + rot_h[:, 0] * 20 + [0, 25, 20], [-18, hc[1] + 5, V["T5"].z_mid],
          [-40, spine_y(L["T5"]) + 35, V["T5"].z_mid - 5]]
    tubes["pulmonary_trunk"] = Tube.through(np.array(pt), [13, 12, 9], 8.0)
    pr = [[-18, hc[1] + 5, V["T5"].z_mid], [10, hc[1] - 15, V["T5"].z_mid - 5],
          [45, spine_y(L["T6"]) + 30, V["T6"].z_mid]]
    tubes["pulmonary_right"] = Tube.through(np.array(pr), [10, 10, 8], 8.0)
    # portal vein: confluence behind the pancreatic neck to the porta hepatis, branches into the liver
    conf = pan[2] + np.array([u(0, 6), -u(10, 15), 0])
    porta = np.array([u(35, 50) * w, conf[1] + u(-10, 5), L["T12"] + u(-5, 10)])
    tubes["portal_vein"] = Tube.through(np.array([conf, 0.5 * (conf + porta) + [0, 0, -3], porta]), [7, 7, 7.5], 6.0)
    tubes["portal_right"] = Tube.through(np.array([porta, porta + [30, -10, 12], porta + [60, -25, 25]]), [6, 4.5, 3],
                                         6.0)
    tubes["portal_left"] = Tube.through(np.array([porta, porta + [-30, 15, 8], porta + [-60, 30, 10]]), [5, 4, 2.5],
                                        6.0)
    sv = [conf, pan[3] + [0, -12, 0], pan[4] + [0, -11, 0], hilum]
    tubes["splenic_vein"] = Tube.through(np.array(sv), [5, 5, 4.5, 4], 6.0)
    tubes["smv"] = Tube.through(np.array([conf, conf + [2, 5, -40], conf + [5, 15, -90]]), [6, 5, 4], 8.0)
    sma0 = np.array([-4, spine_y(L["L1"]) + V["L1"].ry + 20, L["L1"] + 5])
    tubes["sma"] = Tube.through(np.array([sma0, sma0 + [-3, 18, -20], sma0 + [-8, 25, -90]]), [4, 3.5, 3], 8.0)
    for name, sigma in (("left_kidney", -1.0), ("right_kidney", 1.0)):
        k = organs[name]
        hil = k.centre + np.array([-sigma * k.semi[0] * 0.6, 8.0, 0.0])
        src_v = ivc[2] if sigma > 0 else np.array([-10.0, spine_y(hil[2]) + V["L1"].ry + 22, hil[2] + 5])
        tubes[f"renal_vein_{name}"] = Tube.through(np.array([hil, 0.5 * (hil + src_v) + [0, 6, 0],
                                                   np.array(ivc[2], dtype=float)]), [5, 5, 6], 6.0)
        tubes[f"renal_artery_{name}"] = Tube.through(np.array([hil + [0, -5, 3], [-8, spine_y(hil[2]) + V["L1"].ry + 8,
                                                     L["L1"] - 8]]), [3, 3.5], 6.0)
        # ureter: from the renal pelvis along the psoas down to the bladder
        ureter = [hil, [sigma * (V["L3"].rx + 25), spine_y(L["L3"]) + 25, L["L3"]],
                  [sigma * 45, spine_y(sacrum_top) + 40, sacrum_top - 20], [sigma * 30, y_fh + 25, z_fh + 15]]
        tubes[f"ureter_{name}"] = Tube.through(np.array(ureter), [4, 2.5, 2.5, 2.5], 8.0)
    hv_top = np.array(ivc[0], dtype=float) + [0, 0, -10]
    for dx, dy in ((55, -10), (15, 30), (-30, 35)):
        tubes[f"hepatic_vein_{dx}"] = Tube.through(np.array([hv_top, hv_top + [dx * 0.5, dy * 0.5, -15],
                                                   hv_top + [dx, dy, -45]]), [7, 5, 3], 6.0)

    # colon: cecum in the right iliac fossa, ascending, hepatic flexure, sagging transverse, splenic flexure high on
    # the left, descending, sigmoid loop into the pelvis, rectum in front of the sacrum
    aL3, frL3, bkL3 = cav(L["L3"])
    aL1, _, _ = cav(L["L1"])
    ysL3 = spine_y(L["L3"])
    sag = u(0, 60)
    col = np.array([
        [aL3 - u(35, 50), ysL3 + u(30, 50), sacrum_top - u(0, 25)],
        [aL3 - u(30, 42), ysL3 + u(10, 25), L["L4"]],
        [aL1 - u(35, 48), ysL2 + u(10, 25), L["L2"]],
        [aL1 - u(55, 70), ysL2 + u(35, 50), L["L1"] - u(5, 25)],
        [u(20, 40), frL3 - u(25, 40), L["L2"] - sag * 0.5],
        [-u(0, 20), frL3 - u(20, 35), L["L3"] - sag],
        [-aL1 + u(50, 70), frL1 - u(35, 60), L["L1"] - sag * 0.3],
        [-aL1 + u(28, 42), spine_y(L["T12"]) + u(25, 45), L["T12"] + u(-10, 10)],
        [-aL1 + u(28, 40), ysL2 + u(0, 15), L["L2"]],
        [-aL3 + u(28, 40), ysL3 + u(0, 15), L["L4"]],
        [-aL3 + u(35, 50), ysL3 + u(25, 40), sacrum_top - u(5, 20)],
        [-u(20, 45), y_fh + u(20, 40), z_fh + u(30, 50)],
        [u(0, 25), y_fh + u(0, 25), z_fh + u(35, 60)],
        [u(-5, 5), spine_y(sacrum_top - 70) + u(25, 35), sacrum_top - 70],
        [0.0, spine_y(z_floor) + u(30, 45), z_floor - 5],
    ])  # fmt: skip
    col_r = np.array([32, 26, 25, 25, 23, 22, 23, 24, 20, 19, 18, 16, 16, 20, 14]) * u(0.8, 1.15)
    if "left_kidney" in removed:  # the descending colon and splenic flexure fall into the empty renal fossa
        k = organs["left_kidney"]
        for i in (7, 8):
            col[i, :2] = col[i, :2] + 0.7 * (k.centre[:2] - col[i, :2])
    if "right_kidney" in removed:
        k = organs["right_kidney"]
        for i in (2, 3):
            col[i, :2] = col[i, :2] + 0.7 * (k.centre[:2] - col[i, :2])
    if "spleen" in removed:
        col[7] = col[7] + [-10, -20, 30]
    colon = Tube.through(col, col_r, 6.0)
    n_pts = len(colon.points)
    haustra = 1.0 + 0.12 * np.sin(np.arange(n_pts) * 2 * math.pi / u(2.5, 3.5))
    tubes["colon"] = Tube(colon.points, colon.radii * haustra)
    gas_bubbles = []
    for i in rng.choice(n_pts, size=min(n_pts, int(rng.integers(6, 18))), replace=False):
        r = colon.radii[i] * u(0.3, 0.75)
        gas_bubbles.append(np.concatenate([colon.points[i] + [u(-5, 5), colon.radii[i] * u(0.0, 0.5), u(-5, 5)], [r]]))

    # small bowel: random walks through the mid and lower abdomen and pelvis, painted only into free space. Four to
    # six metres of it fill most of the infracolic space (mesenteric fat between the loops); about a third of the
    # loops are collapsed (thick soft-tissue wall around a slit of fluid), the rest hold fluid.
    bowel: list[Tube] = []
    bowel_lumen_shrink: list[float] = []
    lo = np.array([-aL3 + 22, spine_y(L["L3"]) + 20, z_fh + 10])
    hi = np.array([aL3 - 22, frL3 - 5, L["L2"] + 20])
    centre_sb = 0.5 * (lo + hi)
    for _ in range(int(rng.integers(24, 34))):
        p = lo + (hi - lo) * rng.random(3)
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        pts = []
        for _ in range(int(rng.integers(18, 31))):
            pts.append(p.copy())
            # a persistent random turn; outside the region the loop bends back towards its middle
            direction = direction + rng.normal(scale=0.55, size=3)
            if np.any(p < lo) or np.any(p > hi):
                back = centre_sb - p
                direction = direction + 1.5 * back / np.linalg.norm(back)
            direction /= np.linalg.norm(direction)
            p = p + direction * 11.0
        radius = u(10, 14)
        bowel.append(Tube.through(np.array(pts), radius, 4.0))
        bowel_lumen_shrink.append(0.7 * radius if rng.random() < 0.35 else 2.5)

    # beds of removed organs: loops, clips
    bed_loops: list[Tube] = []
    clips: list[np.ndarray] = []
    for organ in sorted(removed):
        if organ in ("left_kidney", "right_kidney"):
            k = organs[organ]
            c = k.centre + np.array([0, 5, 0])
            bed_loops.append(Tube.through(np.array([c + [0, 0, 30], c + [8, 4, 0], c + [-5, 8, -35]]), u(9, 13), 5.0))
            hil = k.centre + np.array([-np.sign(k.centre[0]) * k.semi[0] * 0.7, 5.0, 0.0])
            clips += [hil + rng.uniform(-7, 7, 3) for _ in range(int(rng.integers(2, 6)))]
        elif organ == "spleen":
            bed_loops.append(Tube.through(np.array([sc + [10, 10, -25], sc + [5, 0, 0], sc + [15, 5, 25]]), u(10, 14),
                                          5.0))
            clips += [hilum + rng.uniform(-8, 8, 3) for _ in range(int(rng.integers(2, 6)))]
        elif organ == "pancreas":
            mid = pan[2:5]
            bed_loops.append(Tube.through(mid + [0, 5, 0], u(9, 13), 5.0))
            clips += [pan[int(rng.integers(0, 6))] + rng.uniform(-8, 8, 3) for _ in range(int(rng.integers(3, 7)))]
        elif organ == "gallbladder":
            clips += [gb_c + rng.uniform(-6, 6, 3) for _ in range(int(rng.integers(2, 4)))]
        elif organ == "stomach":
            bed_loops.append(Tube.through(st_pts[1:5] + [10, -5, 0], u(10, 14), 5.0))
            clips += [st_pts[int(rng.integers(0, 6))] + rng.uniform(-8, 8, 3) for _ in range(int(rng.integers(2, 5)))]

    # ribs: 12 pairs from the costovertebral joints around the chest wall, descending anteriorly
    ribs: list[tuple[int, Tube, Tube | None]] = []
    drops = [25, 40, 55, 65, 75, 85, 90, 95, 95, 90, 60, 35]
    ends = [62, 68, 70, 72, 72, 72, 70, 58, 50, 42, 12, -18]
    sternum_z = {1: V["T3"].z_top,
                 **{k: V["T4"].z_bot - (k - 2) * (V["T4"].z_bot - V["T9"].z_mid) / 5 for k in range(2, 8)}}
    for k in range(1, 13):
        v = V[f"T{k}"]
        drop = drops[k - 1] * s * u(0.85, 1.15)
        phi1 = ends[k - 1] * u(0.92, 1.05)
        r_rib = (4.5 if k in (1, 11, 12) else 5.5) * u(0.85, 1.15)
        for sigma in (-1.0, 1.0):
            phis = np.linspace(-72.0, phi1, 10)
            pts = [[sigma * (v.rx + 3), spine_y(v.z_mid) - v.ry * 0.3, v.z_top - 3],
                   [sigma * (v.rx + 22), spine_y(v.z_mid) - v.ry - 12, v.z_top - 6]]
            for phi in phis:
                f_ = (phi + 72.0) / (phi1 + 72.0)
                z = v.z_top - 8 - drop * f_**1.3
                a_, fr_, bk_ = cav(z)
                cy_, b_ = 0.5 * (fr_ + bk_), 0.5 * (fr_ - bk_)
                c, s_ = math.cos(phi * _DEG), math.sin(phi * _DEG)
                e = 3.0 if s_ < 0 else 2.0
                px = a_ * abs(c) ** (2 / e)
                py = b_ * math.copysign(abs(s_) ** (2 / e), s_)
                grow = 1.0 + (r_rib + 1.5) / max(40.0, math.hypot(px, py))
                pts.append([sigma * px * grow, cy_ + py * grow, z])
            rib = Tube.through(np.array(pts), r_rib, 7.0)
            cart = None
            end = np.array(pts[-1])
            if k <= 7:
                zt = sternum_z[k]
                _, frs, _ = cav(zt)
                cart = Tube.through(np.array([end, [sigma * 18, frs + 6, zt]]), [r_rib * 0.9, r_rib * 0.8], 6.0)
            elif k <= 10:
                cart = Tube.through(np.array([end, end + [-sigma * 25, 10, 25]]), [r_rib * 0.85, r_rib * 0.7], 6.0)
            ribs.append((k, rib, cart))

    # breasts (female-like) and the other extras
    extras = {
        "breast_proj": u(25, 70) * (0.6 + fat) if female else 0.0,
        "breast": [],
        "fh_x": fh_x,
        "y_fh": y_fh,
        "bladder": None,
        "pelvic_organ": None,
        "arm_r": u(38, 48) + 20 * fat,
        "arm_gap": u(0, 25),
        "table_pad": u(0, 35),
        "table_curv": u(0.0, 8e-4),
        "lung_tree": [],
        "spleen_hilum": hilum,
        "conf": conf,
        "cortex_ratio": u(0.7, 0.78),
    }
    if female:
        for sigma in (-1.0, 1.0):
            zb = V["T5"].z_mid + u(-15, 15)
            _, frb, _ = cav(zb)
            proj = extras["breast_proj"]
            c = np.array([sigma * u(55, 85) * w, frb + at("m_ant", zb) + proj * 0.3, zb])
            semi_b = np.array([u(50, 70), proj, u(45, 65)])
            extras["breast"].append(Ellipsoid(c, semi_b, rotation_matrix(0, 0, sigma * 15 * _DEG), dfm(4.0, (40, 90))))
    bw = u(0.6, 1.3)
    extras["bladder"] = Ellipsoid(np.array([u(-5, 5), y_fh + u(45, 60), z_fh + u(-5, 15)]),
                                  np.array([u(30, 45) * bw, u(25, 38) * bw, u(25, 42) * bw]),
                                  rotation_matrix(u(-10, 10) * _DEG, 0, 0), dfm(3.0, (40, 90)), exponent=2.5)
    if female:
        extras["pelvic_organ"] = Ellipsoid(np.array([u(-10, 10), y_fh + u(15, 30), z_fh + u(35, 55)]),
                                           np.array([u(25, 35), u(20, 28), u(35, 50)]),
                                           rotation_matrix(u(-60, -30) * _DEG, 0, 0), dfm(3.0, (40, 80)))
    else:
        extras["pelvic_organ"] = Ellipsoid(np.array([0.0, y_fh + u(30, 40), z_fh - u(25, 35)]),
                                           np.array([u(16, 22), u(14, 19), u(15, 22)]), np.eye(3), dfm(2.0, (30, 60)))
    # pulmonary vessel trees from the hila
    for sigma in (-1.0, 1.0):
        root = np.array([sigma * u(40, 55), spine_y(L["T6"]) + u(25, 40), L["T6"]])
        stack = [(root, rng.normal(size=3) * [0.3, 0.3, 1.0] + [sigma, 0, 0], 5.0, 0)]
        while stack:
            p, direction, r, depth = stack.pop()
            direction = direction / np.linalg.norm(direction)
            length = u(30, 60) * (0.8**depth)
            q = p + direction * length
            extras["lung_tree"].append(Tube(np.array([p, q]), np.array([r, r * 0.8])))
            if depth < 3:
                for _ in range(2 if depth else 4):
                    nd = direction + rng.normal(scale=0.7, size=3)
                    if depth == 0:
                        nd = rng.normal(size=3) * [0.5, 0.6, 1.2] + [sigma * 0.8, 0, 0]
                    stack.append((q, nd, r * 0.7, depth + 1))

    # drawn last, so every earlier draw of a seed is what version 5 drew
    # perirenal fat inside Gerota's fascia: a few millimetres in thin people, 1-3 cm in obese ones
    extras["perirenal_fat_mm"] = u(3.0, 9.0) + 20.0 * fat * u(0.5, 1.0)
    # fatty pancreas (interlobular fat grows with age and body fat): the fraction of the gland's volume that is fat
    extras["pancreas_fat"] = float(np.clip(rng.beta(1.5, 4.0) + 0.3 * fat, 0.03, 0.7))

    return Patient(
        vertebrae=verts, level_z=L, spine_knots=sp_y, scoliosis=scol, body=body, fat=fat, pelvis_width=pw,
        female=female, arms_down=arms_down, z_top=z_top, z_bottom=z_bottom, z_split=z_split, z_fh=z_fh,
        z_floor=z_floor, z_apex=z_apex, sacrum_top=sacrum_top, domes=domes, dome_curv=dome_curv, organs=organs,
        tubes=tubes, liver=liver, spleen_carve=carve, kidney_bend=kidney_bend, bowel=bowel, gas_bubbles=gas_bubbles,
        clips=clips, bed_loops=bed_loops, ribs=ribs, extras=extras, bowel_lumen_shrink=bowel_lumen_shrink,
    )  # fmt: skip


# ====================================================================================================================
# painting
# ====================================================================================================================
def _sup_inside(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside a cross-section that is round in front (v >= 0) and flatter at the back (v < 0)."""
    u2 = u * u
    v2 = v * v
    back = (u2 * np.abs(u) + v2 * np.abs(v)) < 1.0
    front = (u2 + v2) < 1.0
    return np.where(v < 0, back, front)


def _layers(p: Patient, z: np.ndarray) -> dict[str, np.ndarray]:
    """Per-z cross-section parameters (arrays of the shape of ``z``)."""
    xs, ys = p.spine_xy(z)
    a, fr, bk = p.prof("a", z), p.prof("front", z), p.prof("back", z)
    fl, fa, fp = p.prof("fat_lat", z), p.prof("fat_ant", z), p.prof("fat_post", z)
    ml, ma, cb = p.prof("m_lat", z), p.prof("m_ant", z), p.prof("c_back", z)
    cx = xs * np.float32(0.3)
    out = {"xs": xs, "ys": ys, "cx": cx}
    for key, (aa, f_, b_) in {"outer": (a + fl, fr + fa, bk + fp), "core": (a, fr, bk),
                              "cav": (a - ml, fr - ma, cb)}.items():
        out[key + "_a"] = aa
        out[key + "_cy"] = ys + (f_ - b_) * np.float32(0.5)
        out[key + "_b"] = (f_ + b_) * np.float32(0.5)
    return out


def _inside(layers: dict, key: str, X: np.ndarray, Y: np.ndarray, sl=slice(None)) -> np.ndarray:
    a = layers[key + "_a"][sl][None, None, :]
    cy = layers[key + "_cy"][sl][None, None, :]
    b = layers[key + "_b"][sl][None, None, :]
    cx = layers["cx"][sl][None, None, :]
    return _sup_inside((X - cx) / a, (Y - cy) / b)


def render_patient(canvas: Canvas, p: Patient, removed: Sequence[str]) -> list[tuple[float, float, float, float]]:
    """Paint the patient onto the canvas.

    Args:
        canvas: the output grid.
        p: the patient.
        removed: organs the scenario took out.

    Returns:
        Streak sources (x, y, z_low, z_high) in world mm for the image formation.
    """
    removed = set(removed)
    streaks: list[tuple[float, float, float, float]] = []
    zs_all = canvas.axes[2].astype(np.float32)
    lay = _layers(p, zs_all)
    full = canvas.full()
    X, Y, Z = canvas.grid(full)

    # ---- body: skin fat, muscle wall, cavity (visceral fat); thighs below the perineum -----------------------------
    trunk = (Z >= np.float32(p.z_split))
    canvas.paint(full, _inside(lay, "outer", X, Y) & trunk, "fat")
    canvas.paint(full, _inside(lay, "core", X, Y) & trunk, "muscle")
    canvas.paint(full, _inside(lay, "cav", X, Y) & trunk & (Z < np.float32(p.z_apex)), "visceral_fat")
    if float(zs_all.min()) < p.z_split + 30:
        for sigma in (-1.0, 1.0):
            cxl = sigma * (p.extras["fh_x"] + 5.0)
            cyl = p.extras["y_fh"] - 5.0
            r_out = 78.0 + 35.0 * p.fat
            zc = Z < np.float32(p.z_split + 25)
            d2 = (X - np.float32(cxl)) ** 2 + (Y - np.float32(cyl)) ** 2
            canvas.paint(full, (d2 < r_out**2) & zc, "fat", where=("air",))
            canvas.paint(full, (d2 < (r_out - 8 - 30 * p.fat) ** 2) & zc & (Z < np.float32(p.z_split)), "muscle")
    for breast in p.extras["breast"]:
        canvas.paint_ellipsoid(breast, "fat", where=("air", "fat"))
        canvas.paint_ellipsoid(breast, "breast_gland", where=("fat",), scale=0.55)
    if p.arms_down:
        _paint_arms(canvas, p, lay, streaks)
    _paint_table(canvas, p)

    # ---- thorax: diaphragm, lungs, mediastinum -----------------------------------------------------------------
    _paint_thorax(canvas, p, lay)

    # ---- skeleton and muscles -------------------------------------------------------------------------------------
    _paint_spine(canvas, p, lay)
    _paint_ribs(canvas, p, lay)
    _paint_pelvis(canvas, p, streaks)
    _paint_muscles(canvas, p, lay)

    # ---- abdominal vessels and organs -----------------------------------------------------------------------------
    soft = ("visceral_fat", "lung", "diaphragm")
    t = p.tubes
    canvas.paint_tube(t["aorta"], "arterial_blood", "aorta", where=soft + ("muscle",))
    canvas.paint_tube(t["inferior_vena_cava"], "venous_blood", "inferior_vena_cava", where=soft + ("diaphragm",))
    for key in sorted(t):
        if key.startswith(("iliac_artery", "renal_artery")) or key == "sma":
            canvas.paint_tube(t[key], "arterial_blood", where=soft + ("muscle",))
        elif key.startswith(("iliac_vein", "renal_vein")):
            if key.endswith(tuple(removed)):
                continue
            canvas.paint_tube(t[key], "venous_blood", where=soft + ("muscle",))
    for key in ("portal_vein", "smv") + (("splenic_vein",) if "pancreas" not in removed else ()):
        canvas.paint_tube(t[key], "portal_blood", where=soft)
    for key in ("ureter_left_kidney", "ureter_right_kidney"):
        if key[7:] not in removed:
            canvas.paint_tube(t[key], "urine", where=("visceral_fat", "muscle"))

    for name in ("left_kidney", "right_kidney"):
        if name in removed:
            _paint_renal_bed(canvas, p, name)
        else:
            _paint_kidney(canvas, p, name)
            _paint_perirenal_fat(canvas, p, name, max_mm=_PERIRENAL_ANTERIOR_MM)  # before the organs around it
    for key in ("left_adrenal", "right_adrenal"):
        canvas.paint_tube(t[key], "adrenal", where=("visceral_fat", "lung"))
    if "spleen" in removed:
        canvas.paint_ellipsoid(p.organs["spleen"], "visceral_fat", where=("lung", "diaphragm"))
    else:
        _paint_spleen(canvas, p)
    if "stomach" not in removed:
        _paint_stomach(canvas, p)
    canvas.paint_tube(t["duodenum"], "gut_wall", where=("visceral_fat",))
    canvas.paint_tube(t["duodenum"], "gut_fluid", where=("gut_wall",), shrink=3.0)
    if "pancreas" not in removed:
        _paint_pancreas(canvas, p)
    if "liver" not in removed:
        _paint_liver(canvas, p)
    if "gallbladder" not in removed:
        gb = p.organs["gallbladder"]
        canvas.paint_ellipsoid(gb, "gut_wall", "gallbladder", where=("visceral_fat", "liver"))
        canvas.paint_ellipsoid(gb, "bile", "gallbladder", where=("gut_wall",), scale=0.85)

    for name in ("left_kidney", "right_kidney"):
        if name not in removed:
            _paint_perirenal_fat(canvas, p, name)

    # ---- pelvis organs, bowel ---------------------------------------------------------------------------------
    bl = p.extras["bladder"]
    canvas.paint_ellipsoid(bl, "muscle", where=("visceral_fat",), scale=1.0)
    canvas.paint_ellipsoid(bl, "urine", where=("muscle",), scale=0.9)
    canvas.paint_ellipsoid(p.extras["pelvic_organ"], "soft_tissue", where=("visceral_fat",))
    colon = t["colon"]
    canvas.paint_tube(colon, "gut_wall", where=("visceral_fat",))
    canvas.paint_tube(colon, "feces", where=("gut_wall",), shrink=3.0)
    for b in p.gas_bubbles:
        box = canvas.box(np.stack([b[:3] - b[3], b[:3] + b[3]], axis=1))
        if box is not None:
            Xb, Yb, Zb = canvas.grid(box)
            canvas.paint(box, (Xb - b[0]) ** 2 + (Yb - b[1]) ** 2 + (Zb - b[2]) ** 2 < b[3] ** 2, "gas",
                         where=("feces",))
    shrinks = [2.5] * len(p.bed_loops) + (list(p.bowel_lumen_shrink) or [2.5] * len(p.bowel))
    for loop, shrink in zip(p.bed_loops + p.bowel, shrinks):
        canvas.paint_tube(loop, "gut_wall", where=("visceral_fat",))
        canvas.paint_tube(loop, "gut_fluid", where=("gut_wall",), shrink=shrink)
    for clip in p.clips:
        canvas.paint_point(clip, 1.5, "metal")
        wx, wy = canvas.world_xy(clip[0], clip[1])
        streaks.append((wx, wy, clip[2] - 3.0, clip[2] + 3.0))
    return streaks


def _paint_arms(canvas: Canvas, p: Patient, lay: dict, streaks: list) -> None:
    L = p.level_z
    z_sh, z_el, z_wr = L["T1"] + 20.0, L["L1"], p.z_fh - 10.0
    r = p.extras["arm_r"]
    for sigma in (-1.0, 1.0):
        zk = np.array([z_wr, z_el, L["T6"], z_sh], dtype=np.float32)
        a_out = p.prof("a", zk) + p.prof("fat_lat", zk)
        xs = sigma * (a_out + p.extras["arm_gap"] + r * np.array([0.8, 0.9, 1.0, 0.8]))
        _, ys = p.spine_xy(zk)
        pts = np.stack([xs, ys + np.array([40, 30, 20, 25]), zk], axis=1)
        arm = Tube.through(pts, r * np.array([0.75, 0.85, 1.0, 1.0]), 12.0)
        canvas.paint_tube(arm, "fat", where=("air", "fat"))
        canvas.paint_tube(arm, "muscle", where=("fat",), shrink=6.0 + 15.0 * p.fat)
        bone = Tube.through(pts[1:] + np.array([sigma * 5.0, 0, 0]), [9, 11, 12], 10.0)
        canvas.paint_tube(bone, "cortical_bone")
        canvas.paint_tube(bone, "marrow", shrink=4.0)
        head = Tube(pts[-1:].repeat(2, axis=0) + np.array([[sigma * 5.0, 0, -12], [sigma * 5.0, 0, -11]]),
                    np.array([22.0, 22.0]))
        canvas.paint_tube(head, "cortical_bone")
        canvas.paint_tube(head, "cancellous_bone", shrink=2.5)
        fore = Tube.through(np.stack([pts[0], pts[1]]) + np.array([sigma * 5.0, 0, 0]), [7, 8], 10.0)
        canvas.paint_tube(fore, "cortical_bone")
        wx, wy = canvas.world_xy(float(pts[-1, 0]), float(pts[-1, 1]))
        streaks.append((wx, wy, float(z_sh) - 30.0, float(z_sh)))


def _paint_table(canvas: Canvas, p: Patient) -> None:
    """A curved table with a foam pad under the patient's back (world frame: the patient may be rolled on it)."""
    _, y_low, _ = p.outer_extent_xy(float(canvas.axes[2].min()), float(canvas.axes[2].max()))
    y_top = y_low - 2.0
    xs = canvas.axes[0].astype(np.float32)[:, None, None]
    ys = canvas.axes[1].astype(np.float32)[None, :, None]
    curv = np.float32(p.extras["table_curv"])
    surface = np.float32(y_top) + curv * xs * xs
    inside = np.abs(xs) < np.float32(230.0)
    pad = p.extras["table_pad"]
    full = canvas.full()
    if pad > 1.0:
        canvas.paint(full, inside & (ys < surface) & (ys > surface - np.float32(pad)), "pad", where=("air",))
    top = surface - np.float32(pad)
    t = np.float32(max(4.0, 1.05 * canvas.spacing[1]))
    tx = np.float32(max(3.0, 0.55 * canvas.spacing[0]))
    canvas.paint(full, inside & (ys < top) & (ys > top - t), "table", where=("air",))
    canvas.paint(full, inside & (ys < top - np.float32(30.0)) & (ys > top - np.float32(30.0) - t), "table",
                 where=("air",))
    canvas.paint(full, (np.abs(np.abs(xs) - np.float32(200.0)) < tx) & (ys < top) & (ys > top - np.float32(34.0)),
                 "table", where=("air",))


def _paint_thorax(canvas: Canvas, p: Patient, lay: dict) -> None:
    L = p.level_z
    z_low = min(p.domes["left"][2], p.domes["right"][2]) - p.dome_curv[2] * 1.6
    ext = np.array([[-200.0, 200.0], [-200.0, 250.0], [z_low, p.z_apex + 5]])
    box = canvas.box(ext)
    if box is None:
        return
    X, Y, Z = canvas.grid(box)
    sl = box[2]
    cav = _inside(lay, "cav", X, Y, sl) & (Z < np.float32(p.z_apex))
    dome = p.dome_z(X, Y)
    band = max(5.0, 1.1 * canvas.spacing[2])
    canvas.paint(box, cav & (Z >= dome - np.float32(band)) & (Z < dome), "diaphragm", where=("visceral_fat",))
    ys = lay["ys"][sl][None, None, :]
    xs = lay["xs"][sl][None, None, :]
    med_w = _interp(canvas.axes[2][sl], [(p.z_apex, 12.0), (L["T2"], 20.0), (L["T5"], 24.0), (L["T9"], 18.0),
                                         (L["T12"], 18.0)])[None, None, :]
    mediastinum = (np.abs(X - xs * np.float32(0.5)) < med_w) & (Y > ys - np.float32(8.0))
    paravertebral = (np.abs(X - xs) < np.float32(26.0)) & (Y < ys + np.float32(10.0))
    canvas.paint(box, cav & (Z > dome) & ~mediastinum & ~paravertebral, "lung", where=("visceral_fat",))
    for seg in p.extras["lung_tree"]:
        canvas.paint_tube(seg, "arterial_blood" if seg.radii[0] > 3 else "venous_blood", where=("lung",))
    # trachea and main bronchi, oesophagus
    V = {v.name: v for v in p.vertebrae}
    ysp = lambda z: float(p.spine_xy(np.array([z]))[1][0])  # noqa: E731
    carina = np.array([0.0, ysp(L["T5"]) + 38.0, V["T5"].z_top])
    tr_pts = [[0.0, ysp(p.z_top) + 40.0, p.z_top + 60], [0.0, ysp(L["T2"]) + 42, L["T2"]], carina]
    trachea = Tube.through(np.array(tr_pts), [9.0, 9.0, 8.5], 10.0)
    canvas.paint_tube(trachea, "soft_tissue", where=("muscle", "visceral_fat", "lung", "fat"))
    canvas.paint_tube(trachea, "gas", shrink=2.0, where=("soft_tissue",))
    for sigma in (-1.0, 1.0):
        br_pts = np.array([carina, carina + [sigma * 25, -8, -18], carina + [sigma * 45, -10, -30]])
        br = Tube.through(br_pts, [6, 5, 4], 6.0)
        canvas.paint_tube(br, "soft_tissue", where=("visceral_fat", "lung"))
        canvas.paint_tube(br, "gas", shrink=1.5, where=("soft_tissue",))
    st0 = p.tubes["stomach"].points[0]
    eso_pts = [[0.0, ysp(p.z_top) + 22, p.z_top + 60], [-4.0, ysp(L["T4"]) + V["T4"].ry + 10, L["T4"]],
               [-8.0, ysp(L["T8"]) + V["T8"].ry + 14, L["T8"]], st0]
    eso = Tube.through(np.array(eso_pts), 7.0, 10.0)
    canvas.paint_tube(eso, "gut_wall", where=("muscle", "visceral_fat", "lung", "diaphragm"))
    # thyroid lobes beside the trachea
    for sigma in (-1.0, 1.0):
        lobe = Ellipsoid(np.array([sigma * 16.0, ysp(L["C7"]) + 40, L["C7"] + 5]), np.array([8.0, 9.0, 20.0]),
                         np.eye(3), Deform.none())
        canvas.paint_ellipsoid(lobe, "soft_tissue", where=("muscle",))
        neck = Tube.through(np.array([[sigma * 26.0, ysp(L["C5"]) + 35, p.z_top + 60], [sigma * 24.0, ysp(L["T2"]) + 45,
                                      L["T2"]]]), 4.5, 10.0)
        canvas.paint_tube(neck, "arterial_blood", where=("muscle", "visceral_fat", "lung", "fat"))
        jugular = Tube(neck.points + np.array([sigma * 12.0, 2.0, 0.0]), neck.radii * 1.3)
        canvas.paint_tube(jugular, "svc_blood" if sigma > 0 else "venous_blood",
                          where=("muscle", "visceral_fat", "lung", "fat"))
    # heart: pericardial fat, myocardium, chambers
    h = p.organs["heart"]
    canvas.paint_ellipsoid(h, "visceral_fat", where=("lung", "visceral_fat", "diaphragm"), scale=1.12)
    canvas.paint_ellipsoid(h, "myocardium", where=("visceral_fat",))
    box = canvas.box(h.extent())
    if box is not None:
        r, q = h.radius(*canvas.grid(box))
        lv = ((q[0] + 0.1) / 0.65) ** 2 + ((q[1] + 0.25) / 0.45) ** 2 + (q[2] / 0.45) ** 2 < 1.0
        rv = ((q[0] + 0.05) / 0.6) ** 2 + ((q[1] - 0.45) / 0.35) ** 2 + ((q[2] + 0.1) / 0.5) ** 2 < 1.0
        atria = (q[0] < -0.35) & (r < 0.78)
        canvas.paint(box, lv & (r < 0.85), "arterial_blood", where=("myocardium",))
        canvas.paint(box, (rv | (atria & (q[1] > 0))) & (r < 0.85) & ~lv, "svc_blood", where=("myocardium",))
        canvas.paint(box, atria & (q[1] <= 0) & ~lv, "arterial_blood", where=("myocardium",))
    mediast = ("visceral_fat", "lung", "myocardium")
    canvas.paint_tube(p.tubes["svc"], "svc_blood", where=mediast)
    canvas.paint_tube(p.tubes["pulmonary_trunk"], "svc_blood", where=mediast)
    canvas.paint_tube(p.tubes["pulmonary_right"], "svc_blood", where=mediast)


def _spine_arrays(p: Patient, z: np.ndarray) -> dict[str, np.ndarray]:
    """Per-z description of the vertebral column (body, disc, sacrum)."""
    n = len(z)
    kind = np.zeros(n, np.int8)  # 0 none, 1 vertebral body, 2 disc, 3 sacrum / coccyx
    rx, ry, canal, spin, trans, mid = (np.zeros(n, np.float32) for _ in range(6))
    ala = np.zeros(n, np.float32)
    verts = p.vertebrae
    for i, zi in enumerate(z):
        if zi > verts[0].z_top:  # upper cervical: repeat the C5 pattern
            period = 18.0
            frac = ((verts[0].z_top - zi) % period) / period
            kind[i] = 1 if frac > 5.0 / 18.0 else 2
            rx[i], ry[i], canal[i], spin[i], trans[i] = 11.0, 8.0, 8.0, 20.0, 12.0
            mid[i] = 1.0
            continue
        for j, v in enumerate(verts):
            if v.z_bot <= zi <= v.z_top:
                kind[i] = 1
                rx[i], ry[i], canal[i], spin[i], trans[i] = v.rx, v.ry, v.canal, v.spinous, v.transverse
                mid[i] = 1.0 - abs(zi - v.z_mid) / max(1e-3, 0.5 * (v.z_top - v.z_bot))
                break
            nxt = verts[j + 1] if j + 1 < len(verts) else None
            if nxt is not None and nxt.z_top < zi < v.z_bot:
                kind[i] = 2
                rx[i], ry[i], canal[i] = 0.5 * (v.rx + nxt.rx), 0.5 * (v.ry + nxt.ry), 0.5 * (v.canal + nxt.canal)
                break
        else:
            if verts[-1].z_bot > zi > p.sacrum_top:
                kind[i] = 2
                rx[i], ry[i], canal[i] = verts[-1].rx, verts[-1].ry, verts[-1].canal
            elif p.sacrum_top >= zi > p.sacrum_top - 135.0:
                t = (p.sacrum_top - zi) / 105.0
                kind[i] = 3
                rx[i], ry[i], canal[i] = max(5.0, 25.0 - 17.0 * t), max(4.0, 16.0 - 9.0 * t), max(0.0, 6.0 - 4.0 * t)
                ala[i] = (52.0 - 30.0 * t) * p.pelvis_width if t < 0.55 else 0.0
                spin[i] = 10.0 if t < 0.8 else 0.0
    return {"kind": kind, "rx": rx, "ry": ry, "canal": canal, "spin": spin, "trans": trans, "mid": mid, "ala": ala}


def _paint_spine(canvas: Canvas, p: Patient, lay: dict) -> None:
    z = canvas.axes[2]
    ext = np.array([[-90.0, 90.0], [float(lay["ys"].min()) - 110.0, float(lay["ys"].max()) + 35.0], [z.min(), z.max()]])
    box = canvas.box(ext)
    if box is None:
        return
    X, Y, Z = canvas.grid(box)
    sl = box[2]
    sa = _spine_arrays(p, z[sl])
    f = np.float32
    c3 = lambda a: np.asarray(a, np.float32)[None, None, :]  # noqa: E731
    kind = c3(sa["kind"])
    xs, ys = c3(lay["xs"][sl]), c3(lay["ys"][sl])
    rx, ry = np.maximum(c3(sa["rx"]), f(1.0)), np.maximum(c3(sa["ry"]), f(1.0))
    canal = c3(sa["canal"])
    dx, dy = X - xs, Y - ys
    nrm = (dx / rx) ** 2 + (dy / ry) ** 2
    canal_y = ys - ry - canal + f(2.0)
    dcan = np.sqrt(dx * dx + (Y - canal_y) ** 2)
    body = (nrm < 1.0) & (kind >= 1) & (dcan > canal + 1.0)
    cortex_t = max(1.5, 0.5 * min(canvas.spacing[0], canvas.spacing[1]))
    shell = nrm > (1.0 - cortex_t / rx) ** 2
    is_body = (kind == 1) | (kind == 3)
    vert_name = "vertebrae"
    # posterior elements
    lam = f(4.5)
    ring = (dcan < canal + lam) & (dcan >= canal) & (Y < ys - ry * 0.5) & (kind != 2) & (kind != 0)
    spin = c3(sa["spin"])
    spinous = (np.abs(dx) < 2.5) & (Y < canal_y - canal) & (Y > canal_y - canal - spin) & (kind == 1)
    mid = c3(sa["mid"])
    trans = c3(sa["trans"])
    tp = (np.abs(Y - canal_y - f(3.0)) < f(3.0)) & (np.abs(dx) > rx * 0.5) & (np.abs(dx) < rx + trans)
    tp &= (mid > 0.35) & (kind == 1)
    ala = c3(sa["ala"])
    ala_safe = np.maximum(ala, f(1.0))
    alae = ((dx / ala_safe) ** 2 + ((dy + f(4.0)) / (ry * f(1.15))) ** 2 < 1.0) & (ala > 0) & (kind == 3)
    sacral = kind == 3
    soft_over = ("visceral_fat", "fat", "muscle", "lung", "diaphragm")
    label_ok = is_body & ~sacral
    canvas.paint(box, body & is_body & ~shell & label_ok, "cancellous_bone", vert_name, where=soft_over)
    canvas.paint(box, body & is_body & shell & label_ok, "cortical_bone", vert_name, where=soft_over)
    canvas.paint(box, (ring | spinous | tp) & ~sacral & (kind == 1), "cortical_bone", vert_name, where=soft_over)
    canvas.paint(box, (body | alae) & sacral, "cancellous_bone", where=soft_over)
    canvas.paint(box, (ring | spinous) & sacral, "cortical_bone", where=soft_over)
    canvas.paint(box, body & (kind == 2), "disc", where=soft_over)
    canvas.paint(box, (dcan < canal) & (kind > 0), "csf")
    cord = (dcan < canal * 0.55) & (Z > f(p.level_z["L1"])) & (kind > 0)
    canvas.paint(box, cord, "cord")


def _paint_ribs(canvas: Canvas, p: Patient, lay: dict) -> None:
    over = ("visceral_fat", "fat", "muscle", "lung", "diaphragm")
    for k, rib, cart in p.ribs:
        canvas.paint_tube(rib, "cortical_bone", where=over)
        canvas.paint_tube(rib, "cancellous_bone", where=("cortical_bone",), shrink=2.0)
        if cart is not None:
            canvas.paint_tube(cart, "cartilage", where=over)
    # sternum: manubrium, body, xiphoid on the anterior midline
    L = p.level_z
    V = {v.name: v for v in p.vertebrae}
    z0, z1 = V["T10"].z_mid, V["T2"].z_top
    ext = np.array([[-40.0, 40.0], [-100.0, 300.0], [z0, z1]])
    box = canvas.box(ext)
    if box is not None:
        X, Y, Z = canvas.grid(box)
        zz = canvas.axes[2][box[2]]
        front = (lay["cav_cy"] + lay["cav_b"])[box[2]][None, None, :]
        half_w = _interp(zz, [(z1, 26.0), (L["T4"], 22.0), (L["T5"], 14.0), (L["T9"], 13.0), (z0, 6.0)])[None, None, :]
        yc = front + np.float32(7.0)
        m = (np.abs(X) < half_w) & (np.abs(Y - yc) < 6.0)
        canvas.paint(box, m, "cancellous_bone", where=over)
        canvas.paint(box, m & ((np.abs(Y - yc) > 4.0) | (np.abs(X) > half_w - 2.0)), "cortical_bone", where=over)
    # clavicles and scapulae
    for sigma in (-1.0, 1.0):
        zt = V["T1"].z_top
        ysp = float(p.spine_xy(np.array([zt]))[1][0])
        fr = float(_interp(np.array([zt]), p.body["front"])[0])
        clav = Tube.through(np.array([[sigma * 22, ysp + fr - 8, zt - 5], [sigma * 70, ysp + fr - 5, zt + 8],
                                      [sigma * 135, ysp + 20, zt + 12]]), 7.0, 8.0)
        canvas.paint_tube(clav, "cortical_bone", where=over)
        canvas.paint_tube(clav, "cancellous_bone", where=("cortical_bone",), shrink=2.5)
        zs_top, zs_bot = V["T2"].z_top, V["T7"].z_mid
        ys7 = float(p.spine_xy(np.array([L["T4"]]))[1][0])
        ext = np.array([[sigma * 50 - 80, sigma * 50 + 80], [ys7 - 110, ys7 + 40], [zs_bot, zs_top]])
        box = canvas.box(ext)
        if box is None:
            continue
        X, Y, Z = canvas.grid(box)
        p0 = np.array([sigma * 55.0, ys7 - 62.0])
        direction = np.array([sigma * 0.82, 0.57])
        ucoord = (X - np.float32(p0[0])) * np.float32(direction[0]) + (Y - np.float32(p0[1])) * np.float32(direction[1])
        dxp, dyp = X - np.float32(p0[0]), Y - np.float32(p0[1])
        vcoord = -dxp * np.float32(direction[1]) + dyp * np.float32(direction[0])
        width = np.float32(15.0) + np.float32(75.0) * (Z - np.float32(zs_bot)) / np.float32(zs_top - zs_bot)
        plate = (ucoord > 0) & (ucoord < width) & (np.abs(vcoord * sigma + 0.0) < 3.5)
        canvas.paint(box, plate, "cortical_bone", where=("muscle", "fat", "visceral_fat"))


def _paint_pelvis(canvas: Canvas, p: Patient, streaks: list) -> None:
    over = ("visceral_fat", "fat", "muscle")
    L = p.level_z
    pw = p.pelvis_width
    fh_x, y_fh, z_fh = p.extras["fh_x"], p.extras["y_fh"], p.z_fh
    ys1 = float(p.spine_xy(np.array([p.sacrum_top]))[1][0])
    z_crest = L["L4"] + 5.0
    y_sym = y_fh + 55.0
    for sigma in (-1.0, 1.0):
        # iliac wing: the posterolateral part of an ellipsoidal bowl
        c = np.array([sigma * 38.0 * pw, ys1 + 72.0, z_crest + 8.0])
        semi = np.array([88.0 * pw, 84.0, z_crest + 8.0 - (z_fh + 25.0)])
        wing = Ellipsoid(c, semi, np.eye(3), Deform.none())
        box = canvas.box(wing.extent())
        if box is not None:
            X, Y, Z = canvas.grid(box)
            r, q = wing.radius(X, Y, Z)
            part = (q[0] * sigma > -0.12) & (q[1] < 0.2) & (Z < np.float32(z_crest)) & (q[2] < 0.0)
            thick = max(8.0, 1.2 * max(canvas.spacing[:2])) / 88.0
            crest = np.float32(z_crest) - Z < np.float32(10.0)
            wall = (r < 1.0) & ((r > 1.0 - thick) | (crest & (r > 1.0 - 2.0 * thick)))
            canvas.paint(box, part & wall, "cancellous_bone", where=over)
            canvas.paint(box, part & wall & ((r > 1.0 - thick * 0.3) | (r < 1.0 - thick * 0.7)), "cortical_bone",
                         where=("cancellous_bone",))
            canvas.paint(box, part & (r < 1.0 - thick) & (r > 0.8), "muscle", where=("visceral_fat",))  # iliacus
        head = np.array([sigma * fh_x, y_fh, z_fh])
        rh = 23.0 * (0.95 + 0.1 * (pw - 0.9))
        # body of the ilium down to the acetabulum, acetabular roof, femoral head, neck, shaft
        body_pts = np.array([[sigma * (fh_x - 30), ys1 + 20, z_fh + 70], [sigma * (fh_x - 8), y_fh - 8, z_fh + 28]])
        body = Tube.through(body_pts, [14.0, 18.0], 6.0)
        canvas.paint_tube(body, "cancellous_bone", where=over)
        box = canvas.box(np.stack([head - rh - 10, head + rh + 10], axis=1))
        if box is not None:
            X, Y, Z = canvas.grid(box)
            dist = np.sqrt((X - head[0]) ** 2 + (Y - head[1]) ** 2 + (Z - head[2]) ** 2)
            cup = (dist > rh + 2.0) & (dist < rh + 9.0) & ((X - head[0]) * sigma < 6.0) & (Z > z_fh - 22.0)
            canvas.paint(box, cup, "cortical_bone", where=over + ("cancellous_bone",))
            canvas.paint(box, dist < rh, "cancellous_bone", where=over)
            canvas.paint(box, (dist < rh) & (dist > rh - 2.0), "cortical_bone", where=("cancellous_bone",))
        troch = np.array([sigma * (fh_x + 42), y_fh - 10, z_fh - 18])
        neck = Tube.through(np.array([head, troch]), [15.0, 17.0], 5.0)
        canvas.paint_tube(neck, "cancellous_bone", where=over)
        shaft = Tube.through(np.array([troch + [0, 5, -10], [sigma * (fh_x + 30), y_fh + 8, z_fh - 220]]), 14.0, 10.0)
        canvas.paint_tube(shaft, "cortical_bone", where=over)
        canvas.paint_tube(shaft, "marrow", where=("cortical_bone",), shrink=5.0)
        # pubis, ischium
        sup_pts = np.array([head + [-sigma * 15, 22, 5], [sigma * 30, y_sym - 5, z_fh - 5],
                            [sigma * 6, y_sym, z_fh - 15]])
        sup = Tube.through(sup_pts, [10.0, 9.0, 10.0], 6.0)
        inf_pts = [[sigma * 8, y_sym, z_fh - 20], [sigma * 18, y_sym - 8, z_fh - 45],
                   [sigma * 52 * pw, y_fh - 25, z_fh - 50], [sigma * (fh_x - 12), y_fh - 28, z_fh - 5]]
        inf = Tube.through(np.array(inf_pts), [10.0, 9.0, 13.0, 14.0], 6.0)
        for tube in (sup, inf):
            canvas.paint_tube(tube, "cortical_bone", where=over)
            canvas.paint_tube(tube, "cancellous_bone", where=("cortical_bone",), shrink=3.0)
        wx, wy = canvas.world_xy(head[0], head[1])
        streaks.append((wx, wy, z_fh - 12.0, z_fh + 12.0))


def _paint_muscles(canvas: Canvas, p: Patient, lay: dict) -> None:
    """Paraspinal (erector spinae), psoas / iliopsoas, quadratus lumborum, diaphragmatic crura."""
    L = p.level_z
    V = {v.name: v for v in p.vertebrae}
    z = canvas.axes[2]
    soft = ("visceral_fat", "fat", "lung", "diaphragm", "muscle")
    ys_all, xs_all = lay["ys"], lay["xs"]
    for sigma in (-1.0, 1.0):
        # erector spinae beside the spinous processes
        zk = [(p.z_top + 60, 18.0), (L["T1"], 20.0), (L["T8"], 20.0), (L["L2"], 27.0), (L["L5"], 24.0),
              (p.sacrum_top - 40, 12.0), (p.sacrum_top - 60, 0.0), (p.z_bottom, 0.0)]
        w_ = _interp(z, zk)
        h_ = w_ * np.float32(0.95)
        y_range = [float(ys_all.min()) - 130, float(ys_all.max())]
        box = canvas.box(np.array([[-110.0, 110.0], y_range, [z.min(), z.max()]]))
        if box is not None:
            X, Y, Z = canvas.grid(box)
            sl = box[2]
            ww = np.maximum(w_[sl], 1.0)[None, None, :]
            cy = (ys_all[sl] - 38.0 - h_[sl] * 0.6)[None, None, :]
            cx = (xs_all[sl] + sigma * (np.float32(6.0) + w_[sl]))[None, None, :]
            m = ((X - cx) / ww) ** 2 + ((Y - cy) / (h_[sl][None, None, :] + 1e-3)) ** 2 < 1.0
            canvas.paint(box, m, "muscle", where=soft)
        # psoas: from T12 along the lumbar bodies, over the pelvic brim, in front of the hip
        fh_x, y_fh = p.extras["fh_x"], p.extras["y_fh"]
        ys = lambda zz: float(p.spine_xy(np.array([zz]))[1][0])  # noqa: E731
        pts = [[sigma * (V["T12"].rx + 4), ys(L["T12"]) + 2, L["T12"]],
               [sigma * (V["L2"].rx + 10), ys(L["L2"]) + 4, L["L2"]],
               [sigma * (V["L4"].rx + 18), ys(L["L4"]) + 10, L["L4"]],
               [sigma * 48 * p.pelvis_width, ys(p.sacrum_top) + 45, p.sacrum_top - 30],
               [sigma * (fh_x - 18), y_fh + 28, p.z_fh], [sigma * (fh_x - 5), y_fh + 20, p.z_fh - 45]]
        psoas = Tube.through(np.array(pts), np.array([5.0, 13.0, 20.0, 22.0, 18.0, 14.0]) * (1.0 - 0.15 * p.fat), 8.0)
        canvas.paint_tube(psoas, "muscle", where=("visceral_fat", "fat", "lung", "diaphragm"))
        ql = Tube.through(np.array([[sigma * (V["L1"].rx + 40), ys(L["T12"]) - 20, L["T12"]],
                                    [sigma * (V["L4"].rx + 48), ys(L["L4"]) - 18, L["L4"]]]), [8.0, 13.0], 10.0)
        canvas.paint_tube(ql, "muscle", where=("visceral_fat", "lung", "diaphragm"))
        crus = Tube.through(np.array([[sigma * 18, ys(L["T11"]) + V["T11"].ry + 18, L["T11"]],
                                      [sigma * 12, ys(L["L1"]) + V["L1"].ry + 5, L["L1"]],
                                      [sigma * 10, ys(L["L2"]) + V["L2"].ry, L["L2"] - 10]]), [4.0, 6.0, 5.0], 8.0)
        canvas.paint_tube(crus, "diaphragm", where=("visceral_fat", "lung"))


def _paint_kidney(canvas: Canvas, p: Patient, name: str) -> None:
    k = p.organs[name]
    box = canvas.box(k.extent())
    if box is None:
        return
    r, q = k.radius(*canvas.grid(box))
    sigma = 1.0 if k.centre[0] > 0 else -1.0
    m = -sigma * q[0]  # towards the midline
    bend = np.float32(p.kidney_bend[name])
    m2 = m - bend * (q[2] * q[2] - np.float32(0.3))
    r2 = np.sqrt(m2 * m2 + q[1] * q[1] + q[2] * q[2])
    sinus = (m2 > -0.05) & (r2 < 0.55) & (np.abs(q[2]) < 0.55)
    notch = (m2 > 0.3) & (np.abs(q[2]) < 0.38) & (np.abs(q[1]) < 0.5)
    par = (r2 < 1.0) & ~sinus & ~notch
    ratio = np.float32(p.extras["cortex_ratio"])
    pyramids = np.cos(np.float32(7.0) * np.arctan2(q[2], q[1] + np.float32(1e-3))) > -0.25
    medulla = par & (r2 < ratio) & (r2 > 0.45) & pyramids
    where = ("visceral_fat", "lung", "diaphragm")
    canvas.paint(box, par & ~medulla, "kidney_cortex", name, where=where)
    canvas.paint(box, medulla, "kidney_medulla", name, where=where)
    canvas.paint(box, (r2 < 1.0) & (sinus | notch), "fat", where=("visceral_fat",))
    canvas.paint(box, (m2 > 0.0) & (r2 < 0.42) & (np.abs(q[2]) < 0.35), "urine", where=("fat",))


_PERIRENAL_ANTERIOR_MM = 4.0
"""Perirenal fat (mm) kept between a kidney and the liver, spleen, pancreas or bowel painted after it."""


def _paint_perirenal_fat(canvas: Canvas, p: Patient, name: str, max_mm: float | None = None) -> None:
    """The perirenal space inside Gerota's fascia: what is still free fat within ``perirenal_fat_mm`` of the kidney
    (at most ``max_mm``) becomes retroperitoneal fat, which the organs and bowel painted afterwards cannot enter.
    Painted twice: a thin layer right after the kidney, so the liver and spleen keep a fat plane from it, and the
    patient's whole thickness after the organs, into what is left free. Muscles and bone keep their voxels."""
    k = p.organs[name]
    t = float(p.extras.get("perirenal_fat_mm", 0.0))
    if max_mm is not None:
        t = min(t, float(max_mm))
    if t <= 0.0:
        return
    shell = Ellipsoid(k.centre, k.semi + np.float32(t), k.rot, k.deform, exponent=k.exponent)
    box = canvas.box(shell.extent())
    if box is None:
        return
    r, _ = shell.radius(*canvas.grid(box))
    canvas.paint(box, r < 1.0, "fat", where=("visceral_fat",))


def _paint_renal_bed(canvas: Canvas, p: Patient, name: str) -> None:
    """After a nephrectomy: the fossa holds fat with a few fibrous strands (loops and clips come later)."""
    k = p.organs[name]
    box = canvas.box(k.extent())
    if box is None:
        return
    r, q = k.radius(*canvas.grid(box))
    canvas.paint(box, r < 1.0, "visceral_fat", where=("visceral_fat", "lung", "diaphragm"))
    strands = (r < 1.0) & (np.abs(np.sin(np.float32(9.0) * q[0] + np.float32(4.0) * q[2])) < 0.08)
    canvas.paint(box, strands, "soft_tissue", where=("visceral_fat",))


def _paint_spleen(canvas: Canvas, p: Patient) -> None:
    s = p.organs["spleen"]
    box = canvas.box(s.extent())
    if box is None:
        return
    X, Y, Z = canvas.grid(box)
    r, q = s.radius(X, Y, Z)
    rc, _ = p.spleen_carve.radius(X, Y, Z)
    below = Z < p.dome_z(X, Y) - np.float32(4.0)
    canvas.paint(box, (r < 1.0) & (rc > 1.0) & below, "spleen", "spleen", where=("visceral_fat", "lung", "diaphragm"))


def _paint_stomach(canvas: Canvas, p: Patient) -> None:
    st = p.tubes["stomach"]
    canvas.paint_tube(st, "gut_wall", "stomach", where=("visceral_fat",))
    canvas.paint_tube(st, "gut_fluid", "stomach", where=("gut_wall",), shrink=4.0)
    box = canvas.box(st.extent())
    if box is None:
        return
    X, Y, Z = canvas.grid(box)
    level = np.float32(np.percentile(st.points[:, 1], 55))  # supine: gas rises anteriorly above this level
    sub = canvas.tissue[box]
    gas = (sub == np.uint8(canvas.where_lut(("gut_fluid",)).argmax())) & (Y > level)
    canvas.paint(box, gas, "gas", "stomach")


def _paint_pancreas(canvas: Canvas, p: Patient) -> None:
    tube = p.tubes["pancreas"]
    canvas.paint_tube(tube, "pancreas", "pancreas", where=("visceral_fat", "portal_blood"))
    box = canvas.box(tube.extent())
    if box is None:
        return
    X, Y, Z = canvas.grid(box)
    lob = p.organs["pancreas_lob"].deform
    dx, dy, dz = lob(X, Y, Z)
    lobules = np.sin(np.float32(0.45) * dx) * np.sin(np.float32(0.4) * dy) * np.sin(np.float32(0.45) * dz)
    gland = canvas.tissue[box] == np.uint8(canvas.where_lut(("pancreas",)).argmax())
    level = np.float32(0.6)  # clefts of a lean gland
    if gland.any():  # a fattier gland: the given fraction of it, the lobules' margins first
        level = min(level, np.float32(np.quantile(lobules[gland], 1.0 - float(p.extras.get("pancreas_fat", 0.0)))))
    canvas.paint(box, lobules > level, "visceral_fat", "pancreas", where=("pancreas",))


def _paint_liver(canvas: Canvas, p: Patient) -> None:
    lv = p.liver
    ext = lv["extent"]
    box = canvas.box(ext)
    if box is None:
        return
    X, Y, Z = canvas.grid(box)
    L = p.level_z
    V = {v.name: v for v in p.vertebrae}
    dome = p.dome_z(X, Y)
    Xd, Yd, Zd = lv["deform"](X, Y, Z)
    x_right = np.float32(ext[0, 1] - 12.0)
    x_left = np.float32(lv["x_left"])
    uu = np.clip((x_right - Xd) / (x_right - x_left), 0.0, 1.0) ** np.float32(lv["power"])
    ys12 = float(p.spine_xy(np.array([L["T12"]]))[1][0])
    y_post = np.float32(ys12 + V["T12"].ry + 5.0)
    y_front = np.float32(ext[1, 1] - 40.0)
    ant = np.clip((Yd - y_post) / (y_front - y_post), 0.0, 1.0)
    z_inf = np.float32(lv["z_low"]) + (np.float32(lv["z_left"]) - np.float32(lv["z_low"])) * uu + np.float32(30.0) * ant
    # left boundary: near the IVC posteriorly, sweeping out to the left lobe's tip anteriorly along a curve; the
    # left lobe is also thinner: it leaves the lower part of the liver's height to the stomach
    sweep = np.sin(np.float32(math.pi / 2) * ant) ** np.float32(1.5)
    x_lim = np.float32(25.0) - (np.float32(25.0) - x_left) * sweep
    x_lim = x_lim + np.float32(0.35) * np.maximum(np.float32(0.0), np.float32(lv["z_left"]) + np.float32(15.0) - Zd)
    mask = (Z < dome - np.float32(4.0)) & (Zd > z_inf) & (Xd > x_lim)
    canvas.paint(box, mask, "liver", "liver", where=("visceral_fat",))
    for key in sorted(p.tubes):
        if key.startswith(("portal_right", "portal_left")):
            canvas.paint_tube(p.tubes[key], "portal_blood", KEEP, where=("liver",))
        elif key.startswith("hepatic_vein"):
            canvas.paint_tube(p.tubes[key], "venous_blood", KEEP, where=("liver",))
