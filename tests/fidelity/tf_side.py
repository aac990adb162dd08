"""Runs OpenVLA's image preprocessing with TensorFlow's real ops; runs INSIDE the TF side venv.

``tests/test_fidelity_openvla.py`` starts it with the side venv's Python (``make tf-venv``:
``tensorflow-cpu``) on rendered LIBERO frames and reads back, per frame, what OpenVLA's
LIBERO eval computes with ``tf.image`` (``experiments/robot/libero``: ``resize_image`` and
``openvla_utils``'s center crop; these few calls are restated here from their documented
behaviour, the ops themselves are TensorFlow's):

    python tf_side.py FRAMES.npz OUT.npz

- ``jpeg/<i>``: ``tf.io.decode_image(tf.image.encode_jpeg(frame))`` (TF's default decode);
- ``jpeg_bytes/<i>``: the encoded bytes (to compare with PIL's encoder);
- ``resized/<i>``: then ``tf.image.resize(..., (224, 224), "lanczos3", antialias=True)``,
  rounded, clipped, uint8 (OpenVLA's ``resize_image``);
- ``crop/<i>``: the center crop of ``crop_input/<i>`` (area 0.9): ``convert_image_dtype`` to
  float32, ``tf.image.crop_and_resize`` with the box of side sqrt(0.9) centred, clip, back
  to uint8 with ``saturate=True``;
- ``chain/<i>``: the crop of ``resized/<i>`` (the whole of OpenVLA's path).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def center_crop(image: np.ndarray, area: float = 0.9) -> np.ndarray:
    image = tf.image.convert_image_dtype(tf.convert_to_tensor(image), tf.float32)[None]
    side = tf.reshape(tf.clip_by_value(tf.sqrt(area), 0, 1), shape=(1,))
    offset = (1 - side) / 2
    boxes = tf.stack([offset, offset, offset + side, offset + side], axis=1)
    crop = tf.image.crop_and_resize(image, boxes, tf.range(1), (224, 224))[0]
    crop = tf.clip_by_value(crop, 0, 1)
    return tf.image.convert_image_dtype(crop, tf.uint8, saturate=True).numpy()


def main(frames_path: str, out_path: str) -> None:
    data = np.load(frames_path)
    out: dict[str, np.ndarray] = {}
    for i, frame in enumerate(data["frames"]):
        encoded = tf.image.encode_jpeg(frame)
        decoded = tf.io.decode_image(encoded, expand_animations=False, dtype=tf.uint8)
        resized = tf.image.resize(decoded, (224, 224), method="lanczos3", antialias=True)
        resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8).numpy()
        out[f"jpeg_bytes/{i}"] = np.frombuffer(encoded.numpy(), dtype=np.uint8)
        out[f"jpeg/{i}"] = decoded.numpy()
        out[f"resized/{i}"] = resized
        out[f"crop/{i}"] = center_crop(data["crop_inputs"][i])
        out[f"chain/{i}"] = center_crop(resized)
    out["tf_version"] = np.asarray(tf.__version__)
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
