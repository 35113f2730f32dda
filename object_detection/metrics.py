"""COCO AP for Mask R-CNN outputs with pycocotools: bbox AP and segm AP (IoU 0.50:0.95, maxDets 100).

The quality metric of the benchmark (spec sections 1 and 4): both APs on minival2014 (= val2017), targets
0.377 (BBOX) and 0.339 (SEGM). Model outputs are torchvision-detection dicts per image, in the pixels of the
original image: boxes float [N, 4] x1, y1, x2, y2; labels int64 [N] contiguous 1..K; scores float [N]; and
masks float [N, 1, H, W] (probabilities pasted into the image; thresholded at 0.5, as the reference's
Masker does) or uint8/bool [N, H, W]. `coco_results` turns them into pycocotools result entries in COCO
ids ([x, y, w, h] boxes, RLE masks) and `coco_evaluate` scores them against the ground-truth json.
`serve_evaluations` is the loop of train.py's evaluation worker process: it runs `coco_evaluate` on the
result lists it receives, so that training need not wait for pycocotools (minutes of one CPU core on the
5,000 minival images).
"""

import contextlib
import io
import signal
import traceback

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

MASK_THRESHOLD = 0.5  # the reference's Masker threshold on sigmoid probabilities


def coco_results(predictions: list[tuple[int, dict]], category_map) -> list[dict]:
    """[(image_id, output dict), ...] -> pycocotools result entries with COCO category ids.

    `category_map` is data.CategoryMap (or anything with to_coco_id(label)); an entry carries "segmentation"
    only when the output has masks.
    """
    results = []
    for image_id, out in predictions:
        boxes = out["boxes"].detach().float().cpu()
        if len(boxes) == 0:
            continue
        xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()
        scores = out["scores"].detach().float().cpu().tolist()
        categories = [category_map.to_coco_id(int(k)) for k in out["labels"].tolist()]
        rles = [None] * len(boxes)
        if "masks" in out:
            masks = out["masks"].detach()
            if masks.dim() == 4:  # [N, 1, H, W]
                masks = masks[:, 0]
            if masks.is_floating_point():  # on the device: 1 byte per pixel goes to the host, not 4
                masks = masks >= MASK_THRESHOLD
            masks = masks.cpu()
            rles = mask_utils.encode(np.asfortranarray(masks.numpy().astype(np.uint8).transpose(1, 2, 0)))
            for rle in rles:
                rle["counts"] = rle["counts"].decode("ascii")  # json-serialisable
        for box, score, category, rle in zip(xywh, scores, categories, rles):
            entry = {"image_id": int(image_id), "category_id": category, "bbox": [round(v, 2) for v in box],
                     "score": round(score, 5)}
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


def serve_evaluations(conn, ground_truth_path: str, image_ids: list[int]) -> None:
    """The evaluation worker process: load the ground truth once, then for each (epoch, results) received on
    `conn` send back ("ok", epoch, {"BBOX": AP, "SEGM": AP}); None or a closed pipe (the trainer is gone)
    ends it. On an exception it sends ("error", epoch, traceback text) and exits with status 1, so the
    trainer fails with the worker's own message rather than waiting."""
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
            epoch, results = job
            conn.send(("ok", epoch, coco_evaluate(ground_truth, results, image_ids)))
    except Exception:
        with contextlib.suppress(OSError):
            conn.send(("error", epoch, traceback.format_exc()))
        raise SystemExit(1) from None
