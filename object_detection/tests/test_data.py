"""data.py: COCO json + images -> detection targets, the training filters, errors that name the file."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import data


def picture(rows: str) -> np.ndarray:
    """An ASCII mask ('#' = 1, '.' = 0), one row per line."""
    return np.array([[c == "#" for c in line.strip()] for line in rows.strip().splitlines()], np.uint8)


def write_coco(tmp_path, images=None, annotations=None, categories=None,
               jpeg_size=(40, 30)) -> tuple[str, str]:
    """A one-file COCO set in tmp_path: (json path, image dir); each listed image gets a real JPEG."""
    image_dir = tmp_path / "imgs"
    image_dir.mkdir(exist_ok=True)
    images = images if images is not None else [{"id": 7, "file_name": "a.jpg", "width": 40, "height": 30}]
    for img in images:
        Image.new("RGB", jpeg_size, (90, 20, 200)).save(image_dir / img["file_name"], quality=90)
    if categories is None:
        categories = [{"id": 18, "name": "tri"}, {"id": 3, "name": "sq"}]
    coco = {"images": images, "annotations": annotations or [], "categories": categories}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(coco))
    return str(path), str(image_dir)


def ann(ann_id=1, image_id=7, category_id=3, bbox=(10, 5, 20, 12), iscrowd=0, segmentation=None) -> dict:
    x, y, w, h = bbox
    seg = segmentation if segmentation is not None else [[x, y, x + w, y, x + w, y + h, x, y + h]]
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": list(bbox),
            "iscrowd": iscrowd, "segmentation": seg, "area": w * h}


def test_bbox_is_read_as_xywh(tmp_path):
    ds = data.CocoDetection([write_coco(tmp_path, annotations=[ann(bbox=(10, 5, 20, 12))])], train=True)
    image, target = ds[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 30, 40)
    assert target["boxes"].tolist() == [[10.0, 5.0, 30.0, 17.0]]  # x1, y1, x1 + w, y1 + h
    assert target["image_id"] == 7


def test_polygons_rasterise_to_the_covered_pixels():
    # A rectangle from (2, 1) to (6, 4) covers pixels x 2..5, y 1..3: a pixel is [x, x+1) x [y, y+1).
    rect = data.rasterise([[2, 1, 6, 1, 6, 4, 2, 4]], 6, 9)
    assert (rect == picture("""
        .........
        ..####...
        ..####...
        ..####...
        .........
        .........""")).all()
    # A triangle takes the pixels whose centres lie inside it.
    tri = data.rasterise([[1, 1, 7, 1, 1, 5]], 6, 9)
    assert (tri == picture("""
        .........
        .#####...
        .####....
        .##......
        .#.......
        .........""")).all()
    # Two polygons of one object are merged; RLE with a counts list (crowds) decodes column-major.
    both = data.rasterise([[2, 1, 6, 1, 6, 4, 2, 4], [1, 1, 7, 1, 1, 5]], 6, 9)
    assert (both == (rect | tri)).all()
    rle = {"counts": [7, 2, 45], "size": [6, 9]}  # 7 zeros, then pixels (1, 1) and (2, 1) in column 1
    expected = np.zeros((6, 9), np.uint8)
    expected[1:3, 1] = 1
    assert (data.rasterise(rle, 6, 9) == expected).all()


def test_masks_of_a_sample(tmp_path):
    seg = [[10, 5, 30, 5, 10, 17]]  # a triangle inside the box
    ds = data.CocoDetection([write_coco(tmp_path, annotations=[ann(segmentation=seg)])], train=True)
    _, target = ds[0]
    assert target["masks"].shape == (1, 30, 40) and target["masks"].dtype == torch.uint8
    assert (target["masks"][0].numpy() == data.rasterise(seg, 30, 40)).all()
    assert 100 < int(target["masks"].sum()) < 130  # about half of the 20 x 12 box


def test_category_mapping_round_trip(tmp_path):
    cmap = data.CategoryMap([{"id": 90, "name": "d"}, {"id": 18, "name": "c"}, {"id": 1, "name": "a"},
                             {"id": 3, "name": "b"}])
    assert [cmap.to_label(c) for c in (1, 3, 18, 90)] == [1, 2, 3, 4]  # sorted COCO ids -> 1..K
    assert all(cmap.to_coco_id(cmap.to_label(c)) == c for c in (1, 3, 18, 90))
    assert cmap.num_classes == 5
    with pytest.raises(ValueError):
        cmap.to_coco_id(0)  # background has no COCO id
    anns = [ann(1, category_id=18, bbox=(1, 1, 5, 5)), ann(2, category_id=3, bbox=(20, 10, 8, 8))]
    ds = data.CocoDetection([write_coco(tmp_path, annotations=anns)], train=True)
    labels = ds[0][1]["labels"].tolist()
    assert labels == [2, 1]  # ids 3 < 18
    assert [ds.category_map.to_coco_id(k) for k in labels] == [18, 3]


def test_training_filters_and_eval_keeps_everything(tmp_path):
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 40, "height": 30} for i in (1, 2, 3, 4)]
    anns = [ann(1, image_id=1, bbox=(5, 5, 10, 10)),
            ann(2, image_id=1, bbox=(2, 2, 30, 20), iscrowd=1),  # crowd: not a training target
            ann(3, image_id=1, bbox=(20, 3, 1, 12)),  # degenerate: w <= 1
            ann(4, image_id=1, bbox=(30, 20, 20, 20)),  # crosses the border: clipped to the image
            ann(5, image_id=2, bbox=(3, 3, 10, 10), iscrowd=1),  # image 2 has only a crowd
            ann(6, image_id=3, bbox=(3, 3, 10, 0.5))]  # image 3 has only a degenerate box; image 4 none
    source = write_coco(tmp_path, images=images, annotations=anns)
    train = data.CocoDetection([source], train=True)
    assert [r["image_id"] for r in train.records] == [1]
    assert train[0][1]["boxes"].tolist() == [[5.0, 5.0, 15.0, 15.0], [30.0, 20.0, 40.0, 30.0]]
    evaluation = data.CocoDetection([source], train=False)
    assert [r["image_id"] for r in evaluation.records] == [1, 2, 3, 4]
    assert len(evaluation[0][1]["boxes"]) == 4 and len(evaluation[3][1]["boxes"]) == 0
    # For prediction (train.py's eval set) the masks are left out; the rest is the same.
    bare = data.CocoDetection([source], train=False, masks=False)
    image, target = bare[0]
    assert "masks" not in target and evaluation[0][1]["masks"].shape == (4, 30, 40)
    assert torch.equal(image, evaluation[0][0]) and torch.equal(target["boxes"], evaluation[0][1]["boxes"])


def test_tiny_dataset_through_data(tiny_data):
    splits = data.coco_splits(tiny_data)
    assert [os.path.basename(j) for j, _ in splits["train"]] == ["instances_train2014.json",
                                                                 "instances_valminusminival2014.json"]
    train = data.CocoDetection(splits["train"], train=True)
    evaluation = data.CocoDetection(splits["eval"], train=False)
    assert len(train) == 144 - 3 + 16  # the three images without annotations are dropped
    assert len(evaluation) == 40  # every minival image is kept
    assert train.category_map.coco_ids == [1, 3, 18]
    assert sorted(set(train.aspect_groups())) == [0, 1]  # both orientations
    crowd_ids = {a["id"] for r in train.records for a, _ in r["objects"] if a["iscrowd"]}
    assert not crowd_ids
    assert any(a["iscrowd"] for r in evaluation.records for a, _ in r["objects"])
    # The drawn objects are the masks: each object's colour fills its mask (polygon = visible mask).
    colours = {1: (220, 60, 50), 3: (60, 200, 70), 18: (60, 90, 230)}
    for index in range(0, len(train), 20):
        image, target = train[index]
        for mask, label in zip(target["masks"], target["labels"]):
            colour = torch.tensor(colours[train.category_map.to_coco_id(int(label))]).view(3, 1)
            inside = image[:, mask.bool()].int()
            close = ((inside - colour).abs().max(0).values < 60).float().mean()
            assert close > 0.85, (index, close)


def test_2017_names_are_the_alternative(tmp_path):
    (tmp_path / "annotations").mkdir()
    for name in ("instances_train2017.json", "instances_val2017.json"):
        (tmp_path / "annotations" / name).write_text("{}")
    splits = data.coco_splits(str(tmp_path))
    assert splits["eval"] == [(str(tmp_path / "annotations/instances_val2017.json"),
                               str(tmp_path / "val2017"))]
    with pytest.raises(data.DataError, match="instances_minival2014.json"):
        data.coco_splits(str(tmp_path / "nowhere"))


def test_missing_image_is_named(tmp_path):
    source = write_coco(tmp_path, annotations=[ann()])
    os.remove(os.path.join(source[1], "a.jpg"))
    ds = data.CocoDetection([source], train=True)
    with pytest.raises(data.DataError, match=r"a\.jpg: image file missing"):
        ds[0]


def test_corrupt_jpeg_is_named(tmp_path):
    source = write_coco(tmp_path, annotations=[ann()])
    path = os.path.join(source[1], "a.jpg")
    with open(path, "r+b") as f:
        f.seek(0)
        f.write(b"\0" * 64)  # the JPEG header is gone
    with pytest.raises(data.DataError, match=r"a\.jpg: cannot decode image"):
        data.CocoDetection([source], train=True)[0]
    with open(path, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0" + b"\0" * 20)  # a JPEG that stops after its first marker
    with pytest.raises(data.DataError, match=r"a\.jpg: cannot decode image"):
        data.CocoDetection([source], train=True)[0]


def test_image_size_must_match_the_json(tmp_path):
    source = write_coco(tmp_path, annotations=[ann()], jpeg_size=(30, 40))
    with pytest.raises(data.DataError, match=r"a\.jpg: image is 30x40, its annotation file says 40x30"):
        data.CocoDetection([source], train=True)[0]


def test_unknown_image_or_category_is_named(tmp_path):
    unknown_image = write_coco(tmp_path, annotations=[ann(5, image_id=99)])
    with pytest.raises(data.DataError, match=r"instances\.json: annotation 5 refers to unknown image_id 99"):
        data.CocoDetection([unknown_image], train=False)
    unknown_category = write_coco(tmp_path, annotations=[ann(6, category_id=2)])
    with pytest.raises(data.DataError, match=r"instances\.json: annotation 6 .* unknown category_id 2"):
        data.CocoDetection([unknown_category], train=False)


@pytest.mark.parametrize("content, problem", [
    ("not json {", "invalid JSON"),
    ("[1, 2]", "top level is list"),
    ('{"images": [], "categories": []}', "no 'annotations' list"),
    ('{"images": [{"id": 1}], "annotations": [], "categories": []}', "lacks file_name, width, height"),
])
def test_a_json_that_is_not_coco_is_named(tmp_path, content, problem):
    path = tmp_path / "captions.json"
    path.write_text(content)
    with pytest.raises(data.DataError, match=rf"captions\.json: not a COCO instances file: .*{problem}"):
        data.CocoDetection([(str(path), str(tmp_path))], train=True)


def test_split_files_must_share_categories(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_coco(tmp_path / "a", annotations=[ann()])
    second = write_coco(tmp_path / "b", annotations=[], categories=[{"id": 3, "name": "sq"}])
    with pytest.raises(data.DataError, match="categories"):
        data.CocoDetection([first, second], train=True)


def test_hflip_mirrors_image_boxes_and_masks(tmp_path):
    seg = [[2, 5, 12, 5, 2, 17]]  # a right triangle with its right angle at the top-left
    ds = data.CocoDetection([write_coco(tmp_path, annotations=[ann(bbox=(2, 5, 10, 12), segmentation=seg)])],
                            train=True)
    image, target = ds[0]
    image = torch.arange(3 * 30 * 40, dtype=torch.int32).view(3, 30, 40)  # distinct pixels
    flipped, ft = data.hflip(image, target)
    assert ft["boxes"].tolist() == [[28.0, 5.0, 38.0, 17.0]]  # W - x2, W - x1 with W = 40
    assert torch.equal(flipped[:, :, 39 - 7], image[:, :, 7])
    ys, xs = ft["masks"][0].nonzero(as_tuple=True)
    assert (int(xs.min()), int(xs.max()) + 1) == (28, 38)  # the mask spans the flipped box's columns
    assert torch.equal(ft["masks"][0].sum(1), target["masks"][0].sum(1))  # rows keep their pixel counts
    # Near the bottom the triangle is one pixel wide at its right angle: column 2 before, 37 after.
    assert target["masks"][0, 15].nonzero().flatten().tolist() == [2]
    assert ft["masks"][0, 15].nonzero().flatten().tolist() == [37]
    back, bt = data.hflip(flipped, ft)
    assert torch.equal(back, image) and torch.equal(bt["boxes"], target["boxes"])
    assert torch.equal(bt["masks"], target["masks"])
    # Through the dataset: (index, True) is the flipped sample.
    flipped_sample = ds[(0, True)]
    assert torch.equal(flipped_sample[0], ds[0][0].flip(-1))
    assert torch.equal(flipped_sample[1]["boxes"], ft["boxes"])


def test_aspect_ratio_batches():
    groups = [1] * 13 + [0] * 7
    sampler = data.AspectRatioBatchSampler(groups, batch_size=2, seed=5, world_size=2, rank=0)
    other = data.AspectRatioBatchSampler(groups, batch_size=2, seed=5, world_size=2, rank=1)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        other.set_epoch(epoch)
        mine, theirs = list(sampler), list(other)
        assert len(mine) == len(theirs) == len(sampler) == 4 + 2  # ceil(13 / 4) + ceil(7 / 4)
        seen = set()
        for a, b in zip(mine, theirs):
            assert len(a) == len(b) == 2
            assert len({groups[i] for i, _ in a + b}) == 1  # one orientation per global batch
            seen |= {i for i, _ in a + b}
        assert seen == set(range(20))  # every image, each rank its own slice
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first  # (seed, epoch) decides
    many = data.AspectRatioBatchSampler([0] * 2000, batch_size=4, seed=0)
    flips = [f for batch in many for _, f in batch]
    assert 900 < sum(flips) < 1100


def test_loader_batches_of_one_orientation(tiny_data):
    train = data.CocoDetection(data.coco_splits(tiny_data)["train"], train=True)
    sampler = data.AspectRatioBatchSampler(train.aspect_groups(), batch_size=4, seed=0)
    loader = torch.utils.data.DataLoader(train, batch_sampler=sampler, collate_fn=data.collate)
    for k, (images, targets) in enumerate(loader):
        assert len(images) == len(targets) == 4
        assert len({img.shape[2] >= img.shape[1] for img in images}) == 1
        for img, t in zip(images, targets):
            assert t["masks"].shape[1:] == img.shape[1:] and len(t["boxes"]) == len(t["labels"]) > 0
        if k == 3:
            break
