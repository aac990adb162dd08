"""Image preprocessing steps of the protocols (evalharness.transforms.images): no simulator."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from evalharness.config.parts import part_names
from evalharness.errors import UserInputError
from evalharness.transforms.images import (
    build_image_transform,
    center_crop,
    flip_vertical,
    jpeg_roundtrip,
    resize,
    resize_with_pad,
    rotate180,
)


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _solid(height: int, width: int, value: int = 200) -> np.ndarray:
    return np.full((height, width, 3), value, dtype=np.uint8)


# ----- rotate180 / flip_vertical ----------------------------------------------------------


@pytest.mark.parametrize("shape", [(256, 256), (32, 48), (7, 5)])
def test_rotate180_equals_two_quarter_turns(shape: tuple[int, int]) -> None:
    image = _image(*shape)
    out = rotate180(image)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.rot90(image, 2))
    np.testing.assert_array_equal(rotate180(out), image)
    assert out.flags.c_contiguous


def test_flip_vertical_reverses_rows_only() -> None:
    image = _image(6, 9)
    np.testing.assert_array_equal(flip_vertical(image), image[::-1])
    assert flip_vertical(image).flags.c_contiguous


def test_transforms_do_not_modify_their_input() -> None:
    image = _image(40, 30)
    before = image.copy()
    build_image_transform(["rotate180", {"resize_with_pad": 24}, "jpeg_roundtrip", {"resize": 20}, {"center_crop": 0.9}])(image)
    np.testing.assert_array_equal(image, before)


# ----- resize_with_pad ----------------------------------------------------------------------


def test_resize_with_pad_of_a_square_256_is_a_plain_224_bilinear_resize() -> None:
    image = _image(256, 256)
    out = resize_with_pad(224)(image)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    expected = np.asarray(Image.fromarray(image).resize((224, 224), resample=Image.BILINEAR))
    np.testing.assert_array_equal(out, expected)


def test_resize_with_pad_of_the_target_size_is_unchanged() -> None:
    image = _image(224, 224)
    np.testing.assert_array_equal(resize_with_pad(224)(image), image)


@pytest.mark.parametrize(
    ("height", "width", "content"),
    [
        (100, 200, (112, 224)),  # wide: pad above and below
        (200, 100, (224, 112)),  # tall: pad left and right
        (128, 256, (112, 224)),
        (50, 224, (50, 224)),    # already fits in width: only padded, never upscaled past 224
    ],
)
def test_resize_with_pad_keeps_aspect_and_pads_zeros_symmetrically(height: int, width: int, content: tuple[int, int]) -> None:
    out = resize_with_pad(224)(_solid(height, width, 200))
    assert out.shape == (224, 224, 3)
    rows = np.flatnonzero(out.any(axis=(1, 2)))
    cols = np.flatnonzero(out.any(axis=(0, 2)))
    # The image occupies one contiguous block of the expected size ...
    assert (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == content
    assert len(rows) == content[0] and len(cols) == content[1]
    # ... centred: the zero margins differ by at most one pixel (openpi's floor division).
    top, bottom = rows[0], 223 - rows[-1]
    left, right = cols[0], 223 - cols[-1]
    assert abs(top - bottom) <= 1 and abs(left - right) <= 1
    assert top <= bottom and left <= right
    # The padding is exactly zero and the content keeps its colour.
    block = out[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    assert np.all(block == 200)
    assert out.sum() == block.sum()


def test_resize_with_pad_symmetric_margins_for_an_even_difference() -> None:
    out = resize_with_pad(224)(_solid(100, 200, 255))
    rows = np.flatnonzero(out.any(axis=(1, 2)))
    assert rows[0] == 56 and 223 - rows[-1] == 56


# ----- resize, jpeg, center_crop ----------------------------------------------------------


def test_resize_gives_the_square_size() -> None:
    assert resize(224)(_image(256, 256)).shape == (224, 224, 3)
    assert resize(224)(_image(100, 300)).shape == (224, 224, 3)


def test_jpeg_roundtrip_keeps_shape_and_is_close() -> None:
    image = np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (64, 1, 3))
    out = jpeg_roundtrip()(image)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - image.astype(int)).mean() < 3


def test_center_crop_keeps_the_centre_and_the_size() -> None:
    # A 100x100 image: 5-pixel red border around a green centre. A crop of 81% of the area
    # (90% of each side) removes exactly the border; resized back it is all green.
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    image[...] = (255, 0, 0)
    image[5:95, 5:95] = (0, 255, 0)
    out = center_crop(0.81)(image)
    assert out.shape == (100, 100, 3)
    assert np.all(out[..., 0] == 0) and np.all(out[..., 1] == 255)


def test_center_crop_of_the_whole_area_is_the_identity() -> None:
    image = _image(30, 40)
    np.testing.assert_array_equal(center_crop(1.0)(image), image)


def test_center_crop_of_openvla_keeps_224() -> None:
    assert center_crop(0.9)(_image(224, 224)).shape == (224, 224, 3)


@pytest.mark.parametrize("area", [0.0, -0.5, 1.5])
def test_center_crop_rejects_an_area_outside_0_1(area: float) -> None:
    with pytest.raises(UserInputError) as info:
        center_crop(area)
    assert "\n" not in str(info.value) and repr(area) in str(info.value)


# ----- build_image_transform ------------------------------------------------------------------


def test_build_composes_steps_in_order() -> None:
    image = _image(256, 256)
    out = build_image_transform(["rotate180", {"resize_with_pad": 224}])(image)
    np.testing.assert_array_equal(out, resize_with_pad(224)(np.rot90(image, 2)))


def test_build_of_no_steps_is_the_identity() -> None:
    image = _image(8, 8)
    np.testing.assert_array_equal(build_image_transform([])(image), image)


def test_openvla_chain_gives_224() -> None:
    chain = build_image_transform(["rotate180", "jpeg_roundtrip", {"resize": 224}, {"center_crop": 0.9}])
    assert chain(_image(256, 256)).shape == (224, 224, 3)


def test_build_rejects_an_unknown_step_with_one_line_naming_it_and_the_choices() -> None:
    with pytest.raises(UserInputError) as info:
        build_image_transform(["rotate180", "rotate90"])
    message = str(info.value)
    assert "\n" not in message
    assert "'rotate90'" in message
    for name in part_names("image_transform"):
        assert name in message


@pytest.mark.parametrize("step", [{"resize": 224, "center_crop": 0.9}, 42, ["rotate180"]])
def test_build_rejects_a_malformed_step_with_one_line(step) -> None:
    with pytest.raises(UserInputError) as info:
        build_image_transform([step])
    assert "\n" not in str(info.value)


# ----- each step is a part: a class with one settings model, named by conf/image_transform/ ---------


def test_each_step_file_spells_out_every_setting_of_its_target() -> None:
    import yaml
    from hydra.utils import get_class

    from evalharness.config.conf import CONF_DIR

    for name in part_names("image_transform"):
        cfg = yaml.safe_load((CONF_DIR / "image_transform" / f"{name}.yaml").read_text())
        settings = get_class(cfg.pop("_target_")).Settings
        assert set(cfg) == set(settings.model_fields) and cfg["name"] == name, name


def test_a_step_takes_its_settings_as_a_mapping_and_by_target() -> None:
    image = _image(40, 40)
    np.testing.assert_array_equal(build_image_transform([{"jpeg_roundtrip": {"quality": 60}}])(image),
                                  jpeg_roundtrip(60)(image))
    by_target = build_image_transform([{"_target_": "evalharness.transforms.images.Resize", "size": 20}])
    np.testing.assert_array_equal(by_target(image), resize(20)(image))


@pytest.mark.parametrize("steps, message", [
    ([{"center_crop": 1.5}], "image_transforms[0].area=1.5 is not valid; allowed: 0 < area <= 1"),
    (["rotate180", {"resize": 0}], "image_transforms[1].size=0 is not valid; allowed: an integer >= 1"),
    (["resize"], "image_transforms[0].size=None is not valid; allowed: an integer"),
    ([{"jpeg_roundtrip": {"qualty": 9}}], "image_transforms[0].qualty is not a setting; allowed: name, quality"),
])
def test_a_bad_step_setting_is_one_line_naming_it(steps, message) -> None:
    with pytest.raises(UserInputError) as info:
        build_image_transform(steps)
    assert str(info.value) == message
