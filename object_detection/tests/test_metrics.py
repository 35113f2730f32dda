"""metrics.py: COCO bbox and segm AP with pycocotools, from torchvision-style outputs to COCO-id results."""

import pytest
import torch

import data
import metrics


@pytest.fixture(scope="module")
def minival(tiny_data):
    """The tiny eval set: its json path, the dataset, and the ground truth as perfect model outputs."""
    json_path, image_dir = data.coco_splits(tiny_data)["eval"][0]
    ds = data.CocoDetection([(json_path, image_dir)], train=False)
    perfect = []
    for index in range(len(ds)):
        _, target = ds[index]
        keep = target["iscrowd"] == 0  # crowds are "ignore" regions, not objects to detect
        n = int(keep.sum())
        perfect.append((target["image_id"], {
            "boxes": target["boxes"][keep], "labels": target["labels"][keep],
            "scores": torch.linspace(1.0, 0.5, n),
            "masks": target["masks"][keep].float().unsqueeze(1)}))  # [N, 1, H, W] probabilities
    return json_path, ds, perfect


def test_perfect_predictions_score_one(minival):
    json_path, ds, perfect = minival
    results = metrics.coco_results(perfect, ds.category_map)
    assert {r["category_id"] for r in results} == {1, 3, 18}  # COCO ids, not labels 1..3
    accuracy = metrics.coco_evaluate(json_path, results)
    assert accuracy == {"BBOX": pytest.approx(1.0), "SEGM": pytest.approx(1.0)}


def test_results_are_coco_boxes_and_rles(minival):
    _, ds, _ = minival
    out = {"boxes": torch.tensor([[10.0, 20.0, 40.0, 30.0]]), "labels": torch.tensor([3]),
           "scores": torch.tensor([0.9]), "masks": torch.zeros(1, 1, 50, 60)}
    out["masks"][0, 0, 20:30, 10:40] = 0.7
    out["masks"][0, 0, 20:30, 38:40] = 0.4  # below the 0.5 threshold
    [entry] = metrics.coco_results([(42, out)], ds.category_map)
    assert entry["bbox"] == [10.0, 20.0, 30.0, 10.0]  # x, y, w, h
    assert entry["category_id"] == 18 and entry["image_id"] == 42
    assert int(metrics.mask_utils.area(entry["segmentation"])) == 10 * 28
    assert entry["segmentation"]["size"] == [50, 60]


def test_wrong_classes_and_wrong_boxes_score_low(minival):
    json_path, ds, perfect = minival
    gt = metrics.load_ground_truth(json_path)
    # Classes rotated (label k -> k mod 3 + 1): every detection has the wrong category.
    rotated = [(i, {**out, "labels": out["labels"] % 3 + 1}) for i, out in perfect]
    accuracy = metrics.coco_evaluate(gt, metrics.coco_results(rotated, ds.category_map))
    assert accuracy["BBOX"] < 0.05 and accuracy["SEGM"] < 0.05
    # Boxes halved about their top-left corner (IoU 0.25 with the truth): box AP is 0, mask AP untouched.
    halved = []
    for i, out in perfect:
        x1, y1, x2, y2 = out["boxes"].unbind(1)
        halved.append((i, {**out, "boxes": torch.stack([x1, y1, (x1 + x2) / 2, (y1 + y2) / 2], 1)}))
    accuracy = metrics.coco_evaluate(gt, metrics.coco_results(halved, ds.category_map))
    assert accuracy["BBOX"] == 0.0 and accuracy["SEGM"] == pytest.approx(1.0)


def test_subset_of_images_and_no_detections(minival):
    json_path, ds, perfect = minival
    half = perfect[: len(perfect) // 2]
    ids = [i for i, _ in half]
    # Only the evaluated images count: perfect on those is AP 1, while over all images it is lower.
    assert metrics.coco_evaluate(json_path, metrics.coco_results(half, ds.category_map), image_ids=ids) == {
        "BBOX": pytest.approx(1.0), "SEGM": pytest.approx(1.0)}
    assert metrics.coco_evaluate(json_path, metrics.coco_results(half, ds.category_map))["BBOX"] < 0.8
    # Without masks there is no segm result; without detections every AP is 0.
    boxes_only = [(i, {k: v for k, v in out.items() if k != "masks"}) for i, out in perfect]
    accuracy = metrics.coco_evaluate(json_path, metrics.coco_results(boxes_only, ds.category_map))
    assert accuracy == {"BBOX": pytest.approx(1.0), "SEGM": 0.0}
    assert metrics.coco_evaluate(json_path, []) == {"BBOX": 0.0, "SEGM": 0.0}
