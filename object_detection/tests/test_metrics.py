"""metrics.py: COCO bbox and segm AP with pycocotools, from model outputs (through model.to_detections,
as the evaluation hands them to the worker) to COCO-id results; RLE masks from the positions where masks
change value, as pycocotools would encode the masks themselves."""

import numpy as np
import pytest
import torch

import data
import metrics
import model


def results(pairs: list[tuple[int, dict]], category_map) -> list[dict]:
    """COCO results of [(image_id, model output)] as the evaluation worker makes them."""
    detections = model.to_detections([i for i, _ in pairs], [out for _, out in pairs])
    return metrics.coco_results(detections, category_map.coco_ids)


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
    entries = results(perfect, ds.category_map)
    assert {r["category_id"] for r in entries} == {1, 3, 18}  # COCO ids, not labels 1..3
    accuracy = metrics.coco_evaluate(json_path, entries)
    assert accuracy == {"BBOX": pytest.approx(1.0), "SEGM": pytest.approx(1.0)}


def test_results_are_coco_boxes_and_rles(minival):
    _, ds, _ = minival
    out = {"boxes": torch.tensor([[10.0, 20.0, 40.0, 30.0]]), "labels": torch.tensor([3]),
           "scores": torch.tensor([0.9]), "masks": torch.zeros(1, 1, 50, 60)}
    out["masks"][0, 0, 20:30, 10:40] = 0.7
    out["masks"][0, 0, 20:30, 38:40] = 0.4  # below the 0.5 threshold
    out["masks"][0, 0, 25, 12] = 0.5  # not above it (the reference's Masker: probability > 0.5)
    [entry] = results([(42, out)], ds.category_map)
    assert entry["bbox"] == [10.0, 20.0, 30.0, 10.0]  # x, y, w, h
    assert entry["category_id"] == 18 and entry["image_id"] == 42
    assert int(metrics.mask_utils.area(entry["segmentation"])) == 10 * 28 - 1
    assert entry["segmentation"]["size"] == [50, 60]


def test_wrong_classes_and_wrong_boxes_score_low(minival):
    json_path, ds, perfect = minival
    gt = metrics.load_ground_truth(json_path)
    # Classes rotated (label k -> k mod 3 + 1): every detection has the wrong category.
    rotated = [(i, {**out, "labels": out["labels"] % 3 + 1}) for i, out in perfect]
    accuracy = metrics.coco_evaluate(gt, results(rotated, ds.category_map))
    assert accuracy["BBOX"] < 0.05 and accuracy["SEGM"] < 0.05
    # Boxes halved about their top-left corner (IoU 0.25 with the truth): box AP is 0, mask AP untouched.
    halved = []
    for i, out in perfect:
        x1, y1, x2, y2 = out["boxes"].unbind(1)
        halved.append((i, {**out, "boxes": torch.stack([x1, y1, (x1 + x2) / 2, (y1 + y2) / 2], 1)}))
    accuracy = metrics.coco_evaluate(gt, results(halved, ds.category_map))
    assert accuracy["BBOX"] == 0.0 and accuracy["SEGM"] == pytest.approx(1.0)


def test_subset_of_images_and_no_detections(minival):
    json_path, ds, perfect = minival
    half = perfect[: len(perfect) // 2]
    ids = [i for i, _ in half]
    # Only the evaluated images count: perfect on those is AP 1, while over all images it is lower.
    assert metrics.coco_evaluate(json_path, results(half, ds.category_map), image_ids=ids) == {
        "BBOX": pytest.approx(1.0), "SEGM": pytest.approx(1.0)}
    assert metrics.coco_evaluate(json_path, results(half, ds.category_map))["BBOX"] < 0.8
    # Without masks there is no segm result; without detections every AP is 0.
    boxes_only = [(i, {k: v for k, v in out.items() if k != "masks"}) for i, out in perfect]
    accuracy = metrics.coco_evaluate(json_path, results(boxes_only, ds.category_map))
    assert accuracy == {"BBOX": pytest.approx(1.0), "SEGM": 0.0}
    assert metrics.coco_evaluate(json_path, []) == {"BBOX": 0.0, "SEGM": 0.0}


@pytest.mark.parametrize("height, width", [(50, 60), (1, 7), (97, 129)])
def test_rle_from_mask_changes_is_pycocotools_encoding(height, width):
    """The worker builds each RLE from the positions where the mask changes value (found on the device); it
    must be the string pycocotools.mask.encode makes of the mask itself, whatever the first and last
    pixels."""
    rng = np.random.default_rng(height)
    masks = np.zeros((6, height, width), np.uint8)
    masks[1] = 1  # full
    masks[2, 0, 0] = 1  # only the first pixel (column-major)
    masks[3, -1, -1] = 1  # only the last pixel
    masks[4] = rng.random((height, width)) < 0.5  # many short runs
    masks[5, height // 3:, width // 4: width // 2 + 1] = 1  # a box
    changes, counts = model.mask_changes(torch.from_numpy(masks).bool())
    assert counts.tolist() == [len(c) for c in np.split(changes.numpy(), np.cumsum(counts.numpy())[:-1])]
    ends = np.cumsum(counts.numpy())
    for mask, mask_changes in zip(masks, np.split(changes.numpy(), ends[:-1])):
        expected = metrics.mask_utils.encode(np.asfortranarray(mask))
        rle = metrics.rle_encode(mask_changes, height, width)
        assert rle == {"size": [height, width], "counts": expected["counts"].decode("ascii")}
