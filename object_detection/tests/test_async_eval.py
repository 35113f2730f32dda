"""evaluation.CocoEvaluator, the COCO results and pycocotools scoring that run in a worker process while
training goes on: it scores what the in-process evaluation scores, a worker that raises or dies becomes a
clear EvalError (exit status 3 from train.main) instead of a wait, and no worker process outlives close()."""

import os
import signal
import time

import numpy as np
import pytest
import torch
from test_tiny_run import child_processes

import data
import evaluation
import metrics
import model
import train

COCO_IDS = [1, 3, 18]  # make_tiny_dataset.py's categories


def eval_split(tiny_data: str) -> tuple[str, list[int], list[dict]]:
    """The tiny minival json, its image ids, and detections (as evaluation.predict hands them over) made of
    its own ground truth (AP 1) but for one image's boxes, shifted by half their width (so bbox AP is below
    1)."""
    path = data.coco_splits(tiny_data)["eval"][0][0]
    gt = metrics.load_ground_truth(path)
    detections = []
    for image in gt.dataset["images"]:
        anns = [a for a in gt.imgToAnns[image["id"]] if not a["iscrowd"]]
        dx = 0.5 if image["id"] == gt.dataset["images"][0]["id"] else 0.0
        boxes = np.array([[x + dx * w, y, x + w + dx * w, y + h] for x, y, w, h in (a["bbox"] for a in anns)],
                         np.float32).reshape(-1, 4)
        masks = torch.from_numpy(np.stack([gt.annToMask(a) for a in anns]) if anns else
                                 np.zeros((0, image["height"], image["width"]), np.uint8))
        changes, counts = model.mask_changes(masks.bool())
        detections.append({"image_id": image["id"], "height": image["height"], "width": image["width"],
                           "boxes": boxes, "scores": np.full(len(anns), 0.9, np.float32),
                           "labels": np.array([COCO_IDS.index(a["category_id"]) + 1 for a in anns]),
                           "mask_changes": changes.numpy(), "mask_change_counts": counts.numpy()})
    return path, sorted(gt.getImgIds()), detections


def scorer(path: str, ids: list[int], asynchronous: bool) -> evaluation.CocoEvaluator:
    return evaluation.CocoEvaluator(path, ids, COCO_IDS, asynchronous)


def test_worker_scores_as_the_in_process_evaluation(tiny_data):
    path, ids, detections = eval_split(tiny_data)
    expected = metrics.coco_evaluate(path, metrics.coco_results(detections, COCO_IDS), ids)
    assert 0.5 < expected["BBOX"] < 1 and expected["SEGM"] > 0.9
    evaluator = scorer(path, ids, asynchronous=True)
    try:
        assert evaluator.take(wait=True) is None  # nothing pending
        for epoch in (1, 2):  # one at a time, the same worker
            evaluator.submit(epoch, detections)
            assert evaluator.pending == (epoch, detections)
            assert evaluator.take(wait=True) == (epoch, expected) and evaluator.pending is None
        evaluator.submit(3, [])
        deadline = time.time() + 60
        while (done := evaluator.take(wait=False)) is None and time.time() < deadline:
            time.sleep(0.05)  # polling does not block
        assert done == (3, {"BBOX": 0.0, "SEGM": 0.0})
    finally:
        evaluator.close()
    assert child_processes() == []
    synchronous = scorer(path, ids, asynchronous=False)
    synchronous.submit(1, detections)
    assert synchronous.take(wait=False) == (1, expected)


def test_a_failing_worker_is_an_error_not_a_wait(tiny_data, tmp_path):
    _, ids, detections = eval_split(tiny_data)
    evaluator = scorer(str(tmp_path / "missing.json"), ids, asynchronous=True)
    try:
        evaluator.submit(4, detections)
        with pytest.raises(evaluation.EvalError,
                           match=r"(?s)epoch 4 failed in the worker process.*missing\.json"):
            evaluator.take(wait=True)
    finally:
        evaluator.close()
    assert child_processes() == []


def test_a_dead_worker_is_an_error_not_a_wait(tiny_data):
    path, ids, detections = eval_split(tiny_data)
    evaluator = scorer(path, ids, asynchronous=True)
    try:
        os.kill(evaluator._process.pid, signal.SIGKILL)
        evaluator._process.join(30)
        evaluator.submit(5, detections)  # into a closed pipe: take() says what happened
        with pytest.raises(evaluation.EvalError,
                           match=f"exited with status -{int(signal.SIGKILL)} before scoring "
                                                  "epoch 5"):
            evaluator.take(wait=False)
    finally:
        evaluator.close()
    assert child_processes() == []


def test_close_ends_a_worker_that_is_still_scoring(tiny_data):
    path, ids, detections = eval_split(tiny_data)
    evaluator = scorer(path, ids, asynchronous=True)
    evaluator.submit(6, detections * 200)  # nobody takes it
    tic = time.time()
    evaluator.close()
    assert time.time() - tic < 10 and child_processes() == []


class MissingTruthEvaluator(evaluation.CocoEvaluator):
    """The real worker, pointed at a ground-truth json that does not exist: it fails on its first job."""

    def __init__(self, ground_truth_path, image_ids, coco_ids, asynchronous):
        super().__init__(ground_truth_path + ".missing", image_ids, coco_ids, asynchronous)


def test_train_exits_3_naming_the_worker_error(tiny_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(evaluation, "CocoEvaluator", MissingTruthEvaluator)
    rc = train.main(["--data-dir", tiny_data, "--output-dir", str(tmp_path), "--config", "tiny",
                     "--seed", "1", "--device", "cpu", "--max-epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 3 and "train.py: error: the COCO evaluation of epoch 1 failed in the worker process" in err
    assert "instances_minival2014.json.missing" in err
    assert not os.path.exists(tmp_path / "summary.json") and child_processes() == []
