"""COCO AP for Mask R-CNN detections with pycocotools: bbox AP and segm AP (IoU 0.50:0.95, maxDets 100).

The quality metric of the benchmark (spec sections 1 and 4): both APs on minival2014 (= val2017), targets
0.377 (BBOX) and 0.339 (SEGM). `coco_results` turns detections as evaluation.predict leaves them on the host
(per image: boxes float [N, 4] x1, y1, x2, y2 in the original image's pixels, scores [N], labels [N]
contiguous 1..K, and each mask as the positions where it changes value, model.mask_changes) into
pycocotools result entries in COCO ids ([x, y, w, h] boxes, RLE masks), and `coco_evaluate` scores them
against the ground-truth json. `serve_evaluations` is the loop of train.py's evaluation worker process: both
run there, so that training need not wait for them (minutes of one CPU core on the 5,000 minival images).
"""

import contextlib
import io
import signal
import traceback

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def rle_encode(changes: np.ndarray, height: int, width: int) -> dict:
    """COCO's compressed RLE of one mask from the flat column-major indices at which its pixels change value
    (model.mask_changes): the runs alternate 0s and 1s, starting with 0s, so their lengths are the gaps
    between 0, the changes and H x W."""
    counts = np.diff(np.concatenate([[0], changes.astype(np.int64), [height * width]]))
    rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts.tolist()}, height, width)
    rle["counts"] = rle["counts"].decode("ascii")  # json-serialisable
    return rle


def coco_results(detections: list[dict], coco_ids: list[int]) -> list[dict]:
    """Detections (evaluation.py's module docstring) -> pycocotools result entries; coco_ids[k - 1] is the
    COCO category id of label k. An entry carries "segmentation" only when its detection has masks."""
    results = []
    for det in detections:
        boxes = np.asarray(det["boxes"], np.float64).reshape(-1, 4)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        rles = [None] * len(boxes)
        if "mask_change_counts" in det:
            ends = np.cumsum(det["mask_change_counts"])
            rles = [rle_encode(c, det["height"], det["width"])
                    for c in np.split(det["mask_changes"], ends[:-1])] if len(boxes) else []
        scores, labels = det["scores"].tolist(), det["labels"].tolist()
        for box, score, label, rle in zip(xywh.tolist(), scores, labels, rles):
            entry = {"image_id": int(det["image_id"]), "category_id": coco_ids[int(label) - 1],
                     "bbox": [round(v, 2) for v in box], "score": round(score, 5)}
            if rle is not None:
                entry["segmentation"] = rle
            results.append(entry)
    return results


def load_ground_truth(json_path: str) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        return COCO(json_path)


def coco_evaluate(ground_truth, results: list[dict], image_ids=None, iou_types=("bbox", "segm")) -> dict:
    """{"BBOX": AP, "SEGM": AP} (the keys of the MLPerf eval_accuracy value) for results against the truth.

    ground_truth: a COCO object or the path of an instances json. image_ids: the images that were evaluated
    (default: all of the json's), each counted once. With no detection at all every AP is 0.
    """
    gt = load_ground_truth(ground_truth) if isinstance(ground_truth, str) else ground_truth
    keys = {"bbox": "BBOX", "segm": "SEGM"}
    accuracy = {}
    for iou_type in iou_types:
        # As the reference's coco_eval.py: bbox entries without masks, segm entries without boxes (their area,
        # which sets the small/medium/large range, is then the mask's area rather than the box's).
        drop = "segmentation" if iou_type == "bbox" else "bbox"
        typed = [{k: v for k, v in r.items() if k != drop} for r in results if iou_type == "bbox"
                 or "segmentation" in r]
        if not typed:
            accuracy[keys[iou_type]] = 0.0
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes(typed)
            evaluator = COCOeval(gt, dt, iou_type)
            if image_ids is not None:
                evaluator.params.imgIds = sorted({int(i) for i in image_ids})
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
            accuracy[keys[iou_type]] = max(float(evaluator.stats[0]), 0.0)  # -1 means "no ground truth"
    return accuracy


def serve_evaluations(conn, ground_truth_path: str, image_ids: list[int], coco_ids: list[int]) -> None:
    """The evaluation worker process: load the ground truth once, then for each (epoch, detections) received
    on `conn` make the COCO results and send back ("ok", epoch, {"BBOX": AP, "SEGM": AP}); None or a closed
    pipe (the trainer is gone) ends it. On an exception it sends ("error", epoch, traceback text) and exits
    with status 1, so the trainer fails with the worker's own message rather than waiting."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the whole group: the trainer closes us
    epoch = None
    try:
        ground_truth = load_ground_truth(ground_truth_path)
        while True:
            try:
                job = conn.recv()
            except EOFError:
                return
            if job is None:
                return
            epoch, detections = job
            results = coco_results(detections, coco_ids)
            conn.send(("ok", epoch, coco_evaluate(ground_truth, results, image_ids)))
    except Exception:
        with contextlib.suppress(OSError):
            conn.send(("error", epoch, traceback.format_exc()))
        raise SystemExit(1) from None
