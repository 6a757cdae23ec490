"""Each output decoder on real TFLite models (fixtures made by tests/fixtures/make_fixture_models.py)
and on hand-built output arrays where the exact numbers matter."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.perception_support import FIXTURES, iou

from perception.decoders import (
    DecodeParams,
    NanoDetDecoder,
    SSDPostProcessDecoder,
    YoloDecoder,
    select_decoder,
)
from perception.detector import TFLiteDetector
from perception.preprocess import InputPreprocessor, PixelNormalization
from perception.signature import ModelSignature, TensorSpec

COLOURS_BGR = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}
LABELS = ["red", "green", "blue"]


def _scene(colour: str, box: tuple[int, int, int, int], size: tuple[int, int] = (128, 128)) -> np.ndarray:
    """Black BGR image of `size` (w, h) with a solid rectangle [x1, x2) x [y1, y2)."""
    img = np.zeros((size[1], size[0], 3), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = COLOURS_BGR[colour]
    return img


FIXTURE_MODELS = {
    # file: (decoder, minimum IoU with the true box, score tolerance). Float graphs are exact;
    # the int8 YOLO computes its box inside an 8-bit graph, which costs a few pixels (its exact
    # dequantisation is checked by hand below).
    "ssd_postprocess_fixture.tflite": ("ssd", 0.98, 0.002),
    "ssd_postprocess_uint8_fixture.tflite": ("ssd", 0.98, 0.01),
    "yolo_fixture_float.tflite": ("yolo", 0.98, 0.002),
    "yolo_fixture_int8.tflite": ("yolo", 0.85, 0.01),
}


@pytest.fixture(scope="module", params=sorted(FIXTURE_MODELS))
def fixture_detector(request: pytest.FixtureRequest) -> tuple[TFLiteDetector, float, float]:
    name = request.param
    expected_decoder, min_iou, score_tol = FIXTURE_MODELS[name]
    det = TFLiteDetector(FIXTURES / name, labels=LABELS, score_threshold=0.3, num_threads=1)
    assert det.decoder_name == expected_decoder  # picked from the signature
    return det, min_iou, score_tol


@pytest.mark.parametrize(
    "colour,box",
    [("green", (40, 20, 100, 60)), ("red", (8, 64, 48, 120)), ("blue", (64, 0, 128, 32))],
)
def test_fixture_models_give_the_known_box_class_and_score(
    fixture_detector: tuple[TFLiteDetector, float, float], colour: str, box: tuple[int, int, int, int]
) -> None:
    det, min_iou, score_tol = fixture_detector
    found = det.detect(_scene(colour, box))
    assert len(found) == 1, found
    d = found[0]
    assert d.label == colour and d.class_id == LABELS.index(colour)
    assert d.score == pytest.approx(0.9, abs=score_tol)
    assert iou(d.box, box) >= min_iou, (d.box, box)
    if min_iou > 0.95:
        assert np.allclose(d.box, box, atol=1.0), (d.box, box)


def test_fixture_boxes_map_back_to_non_square_originals(
    fixture_detector: tuple[TFLiteDetector, float, float],
) -> None:
    det, min_iou, _ = fixture_detector
    # 256 x 64 image -> 64 x 64 model input: x scaled by 4, y by 1.
    found = det.detect(_scene("blue", (64, 16, 192, 48), size=(256, 64)))
    assert len(found) == 1
    assert iou(found[0].box, (64, 16, 192, 48)) >= min_iou


def test_fixture_models_find_nothing_in_an_empty_scene(
    fixture_detector: tuple[TFLiteDetector, float, float],
) -> None:
    det, _, _ = fixture_detector
    assert det.detect(np.zeros((64, 64, 3), np.uint8)) == []


def test_ssd_roles_come_from_the_postprocess_op_not_the_output_order() -> None:
    det = TFLiteDetector(FIXTURES / "ssd_postprocess_fixture.tflite", labels=LABELS, num_threads=1)
    sig = det.signature
    assert len(sig.detection_postprocess_outputs) == 4  # the real TFLite_Detection_PostProcess op
    roles = det.decoder.roles  # type: ignore[attr-defined]
    assert roles.boxes.shape == (1, 10, 4) and roles.count.shape == (1,)
    # TF2 exports list the op's outputs in another order than (boxes, classes, scores, count).
    assert [t.index for t in sig.outputs] != list(sig.detection_postprocess_outputs)


def test_quantized_input_and_output_use_the_tensors_own_parameters() -> None:
    det = TFLiteDetector(FIXTURES / "yolo_fixture_int8.tflite", labels=LABELS, num_threads=1)
    inp, out = det.signature.inputs[0], det.signature.outputs[0]
    assert inp.dtype == np.int8 and inp.quantized and out.dtype == np.int8 and out.quantized
    buf = np.zeros(inp.shape, np.int8)
    det.preprocessor.fill(_scene("red", (0, 0, 64, 64), size=(64, 64)), buf)
    # RGB red = 255 -> real 1.0 -> q = 1.0 / scale + zero_point; black -> real 0 -> zero_point.
    assert buf[0, 10, 10, 0] == int(round(1.0 / inp.scale + inp.zero_point))
    assert buf[0, 10, 10, 1] == inp.zero_point


def test_int8_yolo_output_is_dequantised_exactly() -> None:
    """The decoder's box equals the int8 output dequantised by hand: (q - zero_point) * scale."""
    det = TFLiteDetector(FIXTURES / "yolo_fixture_int8.tflite", labels=LABELS, num_threads=1)
    found = det.detect(_scene("red", (8, 16, 40, 56), size=(64, 64)))
    assert len(found) == 1
    out = det.signature.outputs[0]
    q = det.interpreter.get_tensor(out.index)[0].astype(np.float64)  # [7, 64], from that invoke
    real = (q - out.zero_point) * out.scale
    anchor = int(np.argmax(real[4]))  # best red anchor
    cx, cy, w, h = real[:4, anchor] * 64
    assert np.allclose(found[0].box, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), atol=1e-3)
    assert found[0].score == pytest.approx(real[4, anchor], abs=1e-6)


def test_uint8_ssd_boxes_are_the_ops_outputs_scaled_to_the_image() -> None:
    det = TFLiteDetector(FIXTURES / "ssd_postprocess_uint8_fixture.tflite", labels=LABELS, num_threads=1)
    assert det.signature.inputs[0].dtype == np.uint8 and det.signature.inputs[0].quantized
    found = det.detect(_scene("blue", (64, 0, 128, 32)))
    roles = det.decoder.roles  # type: ignore[attr-defined]
    ymin, xmin, ymax, xmax = det.interpreter.get_tensor(roles.boxes.index)[0, 0]
    assert len(found) == 1
    assert np.allclose(found[0].box, np.clip([xmin, ymin, xmax, ymax], 0, 1) * 128, atol=1e-3)
    assert found[0].score == pytest.approx(float(det.interpreter.get_tensor(roles.scores.index)[0, 0]))


# --- hand-built outputs -------------------------------------------------------------------

def _spec(index: int, shape: tuple[int, ...], name: str = "", dtype=np.float32, scale=0.0, zp=0) -> TensorSpec:
    return TensorSpec(index, name, shape, np.dtype(dtype), scale, zp)


def _params(score: float = 0.3, iou: float = 0.5, w: int = 32, h: int = 32) -> DecodeParams:
    return DecodeParams(score, iou, 100, w, h)


def test_nanodet_decodes_distribution_focal_loss_boxes() -> None:
    # 32 x 32 input, strides 8 / 16 / 32 -> N = 16, 4, 1; 2 classes; 4 sides x 8 bins.
    bins, classes = 8, 2
    levels = {8: 16, 16: 4, 32: 1}
    outputs, tensors, i = {}, [], 1
    for _stride, n in levels.items():
        scores = np.zeros((1, n, classes), np.float32)
        boxes = np.full((1, n, 4 * bins), -20.0, np.float32)
        outputs[i], outputs[i + 1] = scores, boxes
        tensors += [_spec(i + 1, (1, n, 4 * bins)), _spec(i, (1, n, classes))]  # shuffled order
        i += 2
    # Stride 8 grid is 4 x 4: anchor 10 = row 2, col 2 -> centre (20, 20). Class 1 at 0.8.
    outputs[1][0, 10, 1] = 0.8
    # Distances in bins: left 1, top 1.5 (half in bin 1, half in bin 2), right 1, bottom 0.
    dfl = outputs[2][0, 10].reshape(4, bins)
    dfl[0, 1] = dfl[2, 1] = dfl[3, 0] = 20.0
    dfl[1, 1] = dfl[1, 2] = 20.0
    sig = ModelSignature(inputs=(_spec(0, (1, 3, 32, 32)),), outputs=tuple(tensors))
    decoder = select_decoder(sig)
    assert isinstance(decoder, NanoDetDecoder)
    raw = decoder.decode(outputs.__getitem__, _params())
    assert len(raw) == 1 and raw.class_ids[0] == 1
    assert raw.scores[0] == pytest.approx(0.8)
    # x1 = 20 - 1*8, y1 = 20 - 1.5*8, x2 = 20 + 1*8, y2 = 20 + 0*8
    assert np.allclose(raw.boxes[0], (12.0, 8.0, 28.0, 20.0), atol=1e-3)


def test_nanodet_nms_is_per_class() -> None:
    n, bins = 16, 8
    scores = np.zeros((1, n, 2), np.float32)
    boxes = np.full((1, n, 4 * bins), -20.0, np.float32)
    for anchor in (5, 6):  # neighbouring anchors, same large box around them
        d = boxes[0, anchor].reshape(4, bins)
        d[:, 3] = 20.0
    scores[0, 5, 0], scores[0, 6, 0] = 0.9, 0.8  # same class: one survives
    scores[0, 6, 1] = 0.7  # other class at the same place: kept
    outputs = {1: scores, 2: boxes, 3: np.zeros((1, 4, 2), np.float32), 4: np.full((1, 4, 32), -20.0, np.float32),
               5: np.zeros((1, 1, 2), np.float32), 6: np.full((1, 1, 32), -20.0, np.float32)}
    sig = ModelSignature(
        inputs=(_spec(0, (1, 3, 32, 32)),),
        outputs=(_spec(1, (1, 16, 2)), _spec(2, (1, 16, 32)), _spec(3, (1, 4, 2)), _spec(4, (1, 4, 32)),
                 _spec(5, (1, 1, 2)), _spec(6, (1, 1, 32))),
    )
    raw = NanoDetDecoder(sig).decode(outputs.__getitem__, _params(iou=0.5))
    assert raw.class_ids.tolist() == [0, 1]
    assert raw.scores.tolist() == pytest.approx([0.9, 0.7])


def test_yolo_pixel_boxes_and_transposed_layout() -> None:
    # [1, N, 4 + C] with pixel boxes (as some non-Ultralytics exports): N = 8, C = 2.
    out = np.zeros((1, 8, 6), np.float32)
    out[0, 0] = [100, 50, 40, 20, 0.1, 0.95]  # class 1, box (80, 40, 120, 60)
    out[0, 1] = [102, 51, 40, 20, 0.1, 0.90]  # same object, suppressed
    out[0, 2] = [100, 50, 40, 20, 0.85, 0.1]  # class 0 at the same place: per-class NMS keeps it
    out[0, 3] = [10, 10, 4, 4, 0.2, 0.1]  # below threshold
    sig = ModelSignature(inputs=(_spec(0, (1, 160, 160, 3)),), outputs=(_spec(7, (1, 8, 6)),))
    decoder = select_decoder(sig)
    assert isinstance(decoder, YoloDecoder) and not decoder.channels_first
    raw = decoder.decode({7: out}.__getitem__, _params(w=160, h=160))
    assert raw.class_ids.tolist() == [1, 0]
    assert np.allclose(raw.boxes, [[80, 40, 120, 60], [80, 40, 120, 60]])


def test_ssd_roles_from_tf1_names_without_op_details() -> None:
    outs = (
        _spec(10, (1, 5, 4), "TFLite_Detection_PostProcess"),
        _spec(11, (1, 5), "TFLite_Detection_PostProcess:2"),  # scores listed first
        _spec(12, (1, 5), "TFLite_Detection_PostProcess:1"),  # classes
        _spec(13, (1,), "TFLite_Detection_PostProcess:3"),
    )
    sig = ModelSignature(inputs=(_spec(0, (1, 100, 200, 3)),), outputs=outs)
    decoder = select_decoder(sig)
    assert isinstance(decoder, SSDPostProcessDecoder)
    values = {
        10: np.array([[[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]] + [[0, 0, 0, 0]] * 3], np.float32),
        11: np.array([[0.8, 0.2, 0, 0, 0]], np.float32),
        12: np.array([[3, 7, 0, 0, 0]], np.float32),
        13: np.array([2], np.float32),
    }
    raw = decoder.decode(values.__getitem__, _params(w=200, h=100))
    assert raw.class_ids.tolist() == [3]  # the 0.2 detection is under the threshold
    assert np.allclose(raw.boxes[0], (0.2 * 200, 0.1 * 100, 0.6 * 200, 0.5 * 100))


def test_signature_checks_do_not_overlap() -> None:
    yolo = ModelSignature(inputs=(_spec(0, (1, 64, 64, 3)),), outputs=(_spec(1, (1, 84, 8400)),))
    ssd = ModelSignature(
        inputs=(_spec(0, (1, 300, 300, 3)),),
        outputs=(_spec(1, (1, 10, 4)), _spec(2, (1, 10)), _spec(3, (1, 10)), _spec(4, (1,))),
    )
    assert [d.matches(yolo) for d in (NanoDetDecoder, SSDPostProcessDecoder, YoloDecoder)] == [False, False, True]
    assert [d.matches(ssd) for d in (NanoDetDecoder, SSDPostProcessDecoder, YoloDecoder)] == [False, True, False]


def test_preprocessor_normalises_like_the_formula() -> None:
    spec = _spec(0, (1, 3, 4, 4))
    norm = PixelNormalization("bgr", mean=(103.53, 116.28, 123.675), std=(57.375, 57.12, 58.395))
    pre = InputPreprocessor(spec, norm)
    img = np.random.default_rng(1).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    out = np.zeros(spec.shape, np.float32)
    pre.fill(img, out)
    expected = ((img.astype(np.float64) - norm.mean) / norm.std).transpose(2, 0, 1)
    assert np.allclose(out[0], expected, atol=1e-5)
    # RGB NHWC model: channels swapped relative to the BGR image.
    rgb = InputPreprocessor(_spec(0, (1, 4, 4, 3)), PixelNormalization("rgb", std=(255.0,) * 3))
    out2 = np.zeros((1, 4, 4, 3), np.float32)
    rgb.fill(img, out2)
    assert np.allclose(out2[0], img[:, :, ::-1] / 255.0, atol=1e-6)


def test_grey_fast_path_equals_the_three_channel_result() -> None:
    spec = _spec(0, (1, 3, 8, 8))
    norm = NanoDetDecoder.default_normalization
    pre = InputPreprocessor(spec, norm)
    grey = np.random.default_rng(2).integers(0, 256, (8, 8), dtype=np.uint8)
    a, b = np.zeros(spec.shape, np.float32), np.zeros(spec.shape, np.float32)
    pre.fill(grey, a)
    pre.fill(np.dstack([grey] * 3), b)
    assert np.allclose(a, b, atol=1e-5)
    assert np.allclose(a[0, 2], (grey - norm.mean[2]) / norm.std[2], atol=1e-5)
