"""COCO instance annotations (instances_*.json + an image folder) to torchvision-detection samples.

The on-disk layout is what the real archives unpack to in DATA_DIR (spec section 2; maskrcnn-benchmark
paths_catalog.py @ v0.5, with DATA_DIR as its datasets/coco):
    train2014/COCO_train2014_%012d.jpg   val2014/COCO_val2014_%012d.jpg
    annotations/instances_{train,valminusminival,minival}2014.json
Train = train2014 + valminusminival2014, eval = minival2014 (`coco_splits`). The COCO-2017 names
(train2017/, val2017/, annotations/instances_{train,val}2017.json: the same images) are used instead when the
2014 files are absent.

One sample is (image, target): image a uint8 RGB tensor [3, H, W] at the file's size (the model flips it to
BGR and subtracts the Caffe2 mean), target a dict with
    boxes     float32 [N, 4]  x1, y1, x2, y2 in pixels, from COCO's [x, y, w, h]
    labels    int64 [N]       contiguous 1..K (0 = background), `CategoryMap` maps back to COCO ids
    masks     uint8 [N, H, W] the polygons (or RLE) rasterised with pycocotools
    iscrowd   uint8 [N]       1 for crowd objects (only in evaluation samples: training drops them)
    image_id  int             the COCO image id, which results for pycocotools must carry
Training targets (spec section 2, "annotation handling"): crowd objects (iscrowd=1) are dropped, as are
degenerate boxes (w <= 1 or h <= 1, the reference's _has_only_empty_bbox rule); the rest are clipped to the
image and dropped if empty; an image left with no object is dropped from the training set. Evaluation
keeps every image and every object (pycocotools reads the json itself and treats crowds as "ignore").

`read_detectron_weights` reads the backbone's R-50.pkl (Detectron blobs; model.load_c2_backbone maps them).

Bad input raises DataError naming the file and the problem: a json that is not COCO instances, an
annotation pointing at an unknown image or category, a missing image file, an image that cannot be decoded,
or an image whose size differs from its json entry.
"""

import json
import os
import pickle
import warnings

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from torch.utils.data import Dataset, Sampler

# pycocotools 2.0.11's mask.decode passes copy=False to numpy 2 on every call, which warns; the result is
# right, so the warning is silenced here (once per process, not per mask).
warnings.filterwarnings("ignore", message="__array__ implementation doesn't accept a copy keyword",
                        category=DeprecationWarning)

# (annotation json, image folder) per split, relative to DATA_DIR: the 2014 names first, then 2017.
SPLITS_2014 = {
    "train": [("annotations/instances_train2014.json", "train2014"),
              ("annotations/instances_valminusminival2014.json", "val2014")],
    "eval": [("annotations/instances_minival2014.json", "val2014")],
}
SPLITS_2017 = {
    "train": [("annotations/instances_train2017.json", "train2017")],
    "eval": [("annotations/instances_val2017.json", "val2017")],
}


class DataError(Exception):
    """Bad or missing input data; the message names the file and the problem."""


def coco_splits(data_dir: str) -> dict[str, list[tuple[str, str]]]:
    """{"train": [(json path, image dir), ...], "eval": [...]} for DATA_DIR, 2014 names else 2017 names."""
    for splits in (SPLITS_2014, SPLITS_2017):
        resolved = {name: [(os.path.join(data_dir, j), os.path.join(data_dir, d)) for j, d in parts]
                    for name, parts in splits.items()}
        if all(os.path.isfile(j) for parts in resolved.values() for j, _ in parts):
            return resolved
    wanted = [j for parts in SPLITS_2014.values() for j, _ in parts]
    raise DataError(f"{data_dir}: no COCO annotations found: expected {', '.join(wanted)} "
                    f"(or annotations/instances_{{train,val}}2017.json)")


def load_coco_json(path: str) -> dict:
    """Read an instances json and check its shape; images and categories are indexed by id."""
    try:
        with open(path) as f:
            coco = json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: annotation file missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a COCO instances file: invalid JSON ({e})") from None
    if not isinstance(coco, dict):
        raise DataError(f"{path}: not a COCO instances file: top level is {type(coco).__name__}, "
                        "not an object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise DataError(f"{path}: not a COCO instances file: no '{key}' list")
    for key, fields in (("images", ("id", "file_name", "width", "height")), ("categories", ("id", "name")),
                        ("annotations", ("id", "image_id", "category_id", "bbox", "iscrowd"))):
        for entry in coco[key]:
            missing = [k for k in fields if not isinstance(entry, dict) or k not in entry]
            if missing:
                raise DataError(f"{path}: not a COCO instances file: an entry of '{key}' lacks "
                                f"{', '.join(missing)}: {str(entry)[:200]}")
    return coco


class CategoryMap:
    """COCO category ids (non-contiguous, 1..90 for the 80 real ones) <-> contiguous labels 1..K.

    Labels follow the sorted COCO ids, as in maskrcnn-benchmark's COCODataset; 0 is the background.
    """

    def __init__(self, categories: list[dict]):
        ids = sorted(int(c["id"]) for c in categories)
        if len(set(ids)) != len(ids):
            raise DataError(f"duplicate category ids: {ids}")
        self.coco_ids = ids
        self.names = {int(c["id"]): c["name"] for c in categories}
        self._label = {cid: k + 1 for k, cid in enumerate(ids)}

    @property
    def num_classes(self) -> int:  # including the background
        return len(self.coco_ids) + 1

    def to_label(self, coco_id: int) -> int:
        return self._label[int(coco_id)]

    def to_coco_id(self, label: int) -> int:
        if not 1 <= int(label) <= len(self.coco_ids):
            raise ValueError(f"label {label} outside 1..{len(self.coco_ids)}")
        return self.coco_ids[int(label) - 1]


def read_detectron_weights(path: str) -> dict[str, np.ndarray]:
    """R-50.pkl: a pickled dict of blob name -> array, or {"blobs": that dict} (Detectron's two layouts).

    The file is a pickle from Python 2 (hence latin1), so it is only read once verify_dataset.sh has checked
    its md5.
    """
    try:
        with open(path, "rb") as f:
            blobs = pickle.load(f, encoding="latin1")
    except FileNotFoundError:
        raise DataError(f"{path}: backbone weights file missing") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as e:
        raise DataError(f"{path}: not a Detectron weights pickle ({type(e).__name__}: {e})") from None
    if isinstance(blobs, dict) and isinstance(blobs.get("blobs"), dict):
        blobs = blobs["blobs"]
    if not isinstance(blobs, dict) or not all(isinstance(v, np.ndarray) for v in blobs.values()):
        raise DataError(f"{path}: not a Detectron weights pickle (expected a dict of blob name -> array)")
    return blobs


def xywh_to_xyxy(bbox) -> list[float]:
    x, y, w, h = (float(v) for v in bbox)
    return [x, y, x + w, y + h]


def training_objects(anns: list[dict], width: int, height: int) -> list[tuple[dict, list[float]]]:
    """The objects an image contributes to training, each with its clipped xyxy box (see the docstring)."""
    kept = []
    for ann in anns:
        if ann["iscrowd"]:
            continue
        if ann["bbox"][2] <= 1 or ann["bbox"][3] <= 1:  # degenerate box
            continue
        x1, y1, x2, y2 = xywh_to_xyxy(ann["bbox"])
        x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
        y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
        if x2 > x1 and y2 > y1:
            kept.append((ann, [x1, y1, x2, y2]))
    return kept


def rasterise(segmentation, height: int, width: int) -> np.ndarray:
    """A COCO segmentation (a list of polygons, or RLE: compressed or with a counts list) -> uint8 [H, W]."""
    if isinstance(segmentation, list):
        polygons = [p for p in segmentation if len(p) >= 6]  # a polygon needs 3 points
        if not polygons:
            return np.zeros((height, width), np.uint8)
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle).astype(np.uint8)


def read_image(path: str) -> torch.Tensor:
    """An image file -> uint8 RGB [3, H, W]; grayscale and CMYK JPEGs are converted."""
    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"{path}: image file missing") from None
    except (OSError, SyntaxError, ValueError) as e:  # PIL's UnidentifiedImageError is an OSError
        raise DataError(f"{path}: cannot decode image: {e}") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


class CocoDetection(Dataset):
    """The images of one or more (instances json, image folder) pairs as torchvision-detection samples.

    train=True applies the training filters (module docstring); train=False keeps every image and object.
    All files of a split must list the same categories; `category_map` maps labels back to COCO ids.
    masks=False leaves the masks out of the targets (prediction needs only the image and its id).
    """

    def __init__(self, sources: list[tuple[str, str]], train: bool, masks: bool = True):
        self.train, self.with_masks = train, masks
        self.records: list[dict] = []  # one per kept image: path, id, size, annotations
        self.category_map = None
        for json_path, image_dir in sources:
            coco = load_coco_json(json_path)
            cmap = CategoryMap(coco["categories"])
            if self.category_map is None:
                self.category_map = cmap
            elif cmap.coco_ids != self.category_map.coco_ids:
                raise DataError(f"{json_path}: categories {cmap.coco_ids} differ from those of "
                                f"{sources[0][0]} ({self.category_map.coco_ids})")
            images = {int(img["id"]): img for img in coco["images"]}
            per_image: dict[int, list[dict]] = {i: [] for i in images}
            for ann in coco["annotations"]:
                if ann["image_id"] not in per_image:
                    raise DataError(f"{json_path}: annotation {ann['id']} refers to unknown image_id "
                                    f"{ann['image_id']}")
                if ann["category_id"] not in cmap._label:
                    raise DataError(f"{json_path}: annotation {ann['id']} refers to unknown category_id "
                                    f"{ann['category_id']}")
                per_image[ann["image_id"]].append(ann)
            for image_id in sorted(images):
                img, anns = images[image_id], per_image[image_id]
                if train:
                    objects = training_objects(anns, int(img["width"]), int(img["height"]))
                    if not objects:
                        continue
                else:
                    objects = [(a, xywh_to_xyxy(a["bbox"])) for a in anns]
                self.records.append({"path": os.path.join(image_dir, img["file_name"]), "image_id": image_id,
                                     "width": int(img["width"]), "height": int(img["height"]),
                                     "objects": objects})
        if self.category_map is None:
            raise DataError("CocoDetection needs at least one (json, image folder) pair")

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key) -> tuple[torch.Tensor, dict]:
        """key: an index, or (index, flip) as AspectRatioBatchSampler yields it for training."""
        index, flip = key if isinstance(key, tuple) else (key, False)
        rec = self.records[index]
        image = read_image(rec["path"])
        h, w = image.shape[1:]
        if (w, h) != (rec["width"], rec["height"]):
            raise DataError(f"{rec['path']}: image is {w}x{h}, its annotation file says "
                            f"{rec['width']}x{rec['height']}")
        objects = rec["objects"]
        boxes = torch.tensor([box for _, box in objects], dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([self.category_map.to_label(a["category_id"]) for a, _ in objects],
                              dtype=torch.int64)
        iscrowd = torch.tensor([int(a["iscrowd"]) for a, _ in objects], dtype=torch.uint8)
        target = {"boxes": boxes, "labels": labels, "iscrowd": iscrowd, "image_id": rec["image_id"]}
        if self.with_masks:
            masks = np.zeros((len(objects), h, w), np.uint8)
            for k, (ann, _) in enumerate(objects):
                if "segmentation" in ann:
                    masks[k] = rasterise(ann["segmentation"], h, w)
            target["masks"] = torch.from_numpy(masks)
        return hflip(image, target) if flip else (image, target)

    def aspect_groups(self) -> list[int]:
        """Per image: 1 if width >= height else 0 (the reference's aspect-ratio grouping, from the json)."""
        return [int(rec["width"] >= rec["height"]) for rec in self.records]


def hflip(image: torch.Tensor, target: dict) -> tuple[torch.Tensor, dict]:
    """Mirror an image [3, H, W] and its target left-right: pixel column x -> W - 1 - x, box edge x -> W - x.

    Boxes are continuous pixel coordinates (pixel x covers [x, x + 1)), so a flipped box still bounds its
    flipped mask; the reference's "- 1" (maskrcnn-benchmark BoxList.transpose) belongs to Detectron's
    inclusive-corner convention, which torchvision's box code does not use.
    """
    width = image.shape[-1]
    boxes = target["boxes"].clone()
    boxes[:, 0], boxes[:, 2] = width - target["boxes"][:, 2], width - target["boxes"][:, 0]
    return image.flip(-1), {**target, "boxes": boxes, "masks": target["masks"].flip(-1)}


def collate(batch: list) -> tuple[list[torch.Tensor], list[dict]]:
    """Images of different sizes stay a list: the model's transform resizes and pads them."""
    images, targets = zip(*batch)
    return list(images), list(targets)


class AspectRatioBatchSampler(Sampler):
    """Training batches of (index, flip) pairs, each batch of one orientation (width >= height, or not).

    Per epoch, one permutation of all images (a generator seeded with (seed, epoch), the same on every rank)
    is cut into global batches of batch_size x world_size images of one orientation, in the order they fill;
    a group's last, partial global batch is filled up by repeating its own images. Rank r takes its slice of
    each global batch, so every rank sees the same number of batches and together they see every image once
    (plus the repeats). Each image is flipped left-right with probability flip_prob (the reference's only
    augmentation besides resizing). Call set_epoch before each epoch.
    """

    def __init__(self, groups: list[int], batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 flip_prob: float = 0.5):
        super().__init__()
        self.groups, self.batch_size, self.seed = list(groups), batch_size, seed
        self.rank, self.world_size, self.flip_prob = rank, world_size, flip_prob
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self) -> list[list[tuple[int, bool]]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.groups))
        flips = rng.random(len(self.groups)) < self.flip_prob
        size = self.batch_size * self.world_size
        buckets: dict[int, list] = {}
        batches = []
        for i in order.tolist():
            bucket = buckets.setdefault(self.groups[i], [])
            bucket.append((i, bool(flips[i])))
            if len(bucket) == size:
                batches.append(bucket)
                buckets[self.groups[i]] = []
        for group in sorted(buckets):  # the partial batches, filled up with their own images
            bucket = buckets[group]
            if bucket:
                batches.append([bucket[k % len(bucket)] for k in range(size)])
        return batches

    def __iter__(self):
        start = self.rank * self.batch_size
        for batch in self.global_batches():
            yield batch[start:start + self.batch_size]

    def __len__(self) -> int:
        size = self.batch_size * self.world_size
        counts = [self.groups.count(g) for g in set(self.groups)]
        return sum(-(-c // size) for c in counts)
