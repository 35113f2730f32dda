"""train.CocoEvaluator, the pycocotools scoring that runs in a worker process while training goes on: it
scores what the in-process evaluation scores, a worker that raises or dies becomes a clear EvalError (exit
status 3 from train.main) instead of a wait, and no worker process outlives close()."""

import os
import signal
import time

import pytest
from test_tiny_run import child_processes

import data
import metrics
import train


def eval_split(tiny_data: str) -> tuple[str, list[int], list[dict]]:
    """The tiny minival json, its image ids, and results made of its own ground truth (AP 1) but for one
    image's boxes, shifted by half their width (so bbox AP is below 1)."""
    path = data.coco_splits(tiny_data)["eval"][0][0]
    gt = metrics.load_ground_truth(path)
    results = []
    for a in gt.dataset["annotations"]:
        if a["iscrowd"]:
            continue
        x, y, w, h = a["bbox"]
        dx = w / 2 if a["image_id"] == gt.dataset["images"][0]["id"] else 0
        rle = gt.annToRLE(a)
        rle = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}  # as metrics.coco_results
        results.append({"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9,
                        "bbox": [x + dx, y, w, h], "segmentation": rle})
    return path, sorted(gt.getImgIds()), results


def test_worker_scores_as_the_in_process_evaluation(tiny_data):
    path, ids, results = eval_split(tiny_data)
    expected = metrics.coco_evaluate(path, results, ids)
    assert 0.5 < expected["BBOX"] < 1 and expected["SEGM"] > 0.9
    evaluator = train.CocoEvaluator(path, ids, asynchronous=True)
    try:
        assert evaluator.take(wait=True) is None  # nothing pending
        for epoch in (1, 2):  # one at a time, the same worker
            evaluator.submit(epoch, results)
            assert evaluator.pending == (epoch, results)
            assert evaluator.take(wait=True) == (epoch, expected) and evaluator.pending is None
        evaluator.submit(3, [])
        deadline = time.time() + 60
        while (done := evaluator.take(wait=False)) is None and time.time() < deadline:
            time.sleep(0.05)  # polling does not block
        assert done == (3, {"BBOX": 0.0, "SEGM": 0.0})
    finally:
        evaluator.close()
    assert child_processes() == []
    synchronous = train.CocoEvaluator(path, ids, asynchronous=False)
    synchronous.submit(1, results)
    assert synchronous.take(wait=False) == (1, expected)


def test_a_failing_worker_is_an_error_not_a_wait(tiny_data, tmp_path):
    _, ids, results = eval_split(tiny_data)
    evaluator = train.CocoEvaluator(str(tmp_path / "missing.json"), ids, asynchronous=True)
    try:
        evaluator.submit(4, results)
        with pytest.raises(train.EvalError, match=r"(?s)epoch 4 failed in the worker process.*missing\.json"):
            evaluator.take(wait=True)
    finally:
        evaluator.close()
    assert child_processes() == []


def test_a_dead_worker_is_an_error_not_a_wait(tiny_data):
    path, ids, results = eval_split(tiny_data)
    evaluator = train.CocoEvaluator(path, ids, asynchronous=True)
    try:
        os.kill(evaluator._process.pid, signal.SIGKILL)
        evaluator._process.join(30)
        evaluator.submit(5, results)  # into a closed pipe: take() says what happened
        with pytest.raises(train.EvalError, match=f"exited with status -{int(signal.SIGKILL)} before scoring "
                                                  "epoch 5"):
            evaluator.take(wait=False)
    finally:
        evaluator.close()
    assert child_processes() == []


def test_close_ends_a_worker_that_is_still_scoring(tiny_data):
    path, ids, results = eval_split(tiny_data)
    evaluator = train.CocoEvaluator(path, ids, asynchronous=True)
    evaluator.submit(6, results * 200)  # nobody takes it
    tic = time.time()
    evaluator.close()
    assert time.time() - tic < 10 and child_processes() == []


class MissingTruthEvaluator(train.CocoEvaluator):
    """The real worker, pointed at a ground-truth json that does not exist: it fails on its first job."""

    def __init__(self, ground_truth_path, image_ids, asynchronous):
        super().__init__(ground_truth_path + ".missing", image_ids, asynchronous)


def test_train_exits_3_naming_the_worker_error(tiny_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train, "CocoEvaluator", MissingTruthEvaluator)
    rc = train.main(["--data-dir", tiny_data, "--output-dir", str(tmp_path), "--config", "tiny",
                     "--seed", "1", "--device", "cpu", "--max-epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 3 and "train.py: error: the COCO evaluation of epoch 1 failed in the worker process" in err
    assert "instances_minival2014.json.missing" in err
    assert not os.path.exists(tmp_path / "summary.json") and child_processes() == []
