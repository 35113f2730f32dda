"""ImageNet as extracted by extract.py (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG) to batches of uint8 images.

Classes are the wnids in sorted order (index 0..999; the reference's TF label is index + 1). Preprocessing
(imagenet_preprocessing.py @ v0.5, spec section 2), on uint8 [3, H, W] tensors wherever they were decoded:
  train: a crop window sampled like TF's sample_distorted_bounding_box on the whole image (area fraction
         uniform in [0.1, 1], aspect ratio w/h uniform in [0.75, 1.33], 100 attempts, else the whole image),
         resized to 224x224 bilinear without antialiasing and without keeping the aspect ratio, flipped
         left-right with p = 0.5;
  eval:  shorter side resized to 256 (sizes truncated to int), central 224x224 crop.
Mean subtraction (R/G/B 123.68/116.78/103.94 on the 0-255 scale, no std) happens on the training device in
`normalize`, so loaders move uint8. The random draws of image i in epoch e come from a generator seeded with
(seed, e, i): any number of workers or ranks, and a resumed run, see the same crops.

Decoding: torchvision.io reads JPEG and PNG, and mode RGB converts grayscale and CMYK JPEGs (ImageNet has a
PNG named .JPEG, ~22 CMYK and some grayscale JPEGs); nothing is skipped. On CUDA, workers only read the bytes
and `decode_on_device` decodes a whole batch with nvJPEG, falling back to the CPU per image for what nvJPEG
cannot read (the PNG). A file that cannot be decoded raises DataError naming it, in a worker or not.
"""

import math
import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision.io import ImageReadMode, decode_image, decode_jpeg, read_file

IMAGE_EXTENSIONS = (".JPEG", ".jpeg", ".jpg", ".JPG")
# torchvision 0.29 warns on every decode that TorchCodec will take image decoding over; torchvision.io is what
# the pinned torchvision offers for nvJPEG, so the warning is silenced here (once per process, not per image).
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                        category=DeprecationWarning)


class DataError(Exception):
    """Bad or missing input data; the message names the file and the problem."""


def list_images(root: str) -> tuple[list[str], list[tuple[str, int]]]:
    """(sorted wnids, [(path, class index)] sorted by path) of root/<wnid>/*.JPEG."""
    if not os.path.isdir(root):
        raise DataError(f"{root}: missing (run ./extract.py DATA_DIR, which run_and_time.sh does)")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    samples = [(os.path.join(root, wnid, f), label) for label, wnid in enumerate(classes)
               for f in sorted(os.listdir(os.path.join(root, wnid))) if f.endswith(IMAGE_EXTENSIONS)]
    if not samples:
        raise DataError(f"{root}: no <wnid>/*.JPEG images")
    return classes, samples


def sample_crop(width: int, height: int, rng: np.random.Generator, area_range=(0.1, 1.0),
                ratio_range=(0.75, 1.33), attempts: int = 100) -> tuple[int, int, int, int]:
    """(left, top, w, h) of a crop window, as TF's sample_distorted_bounding_box draws it on the whole image.

    TF draws the aspect ratio uniformly (not log-uniformly as torchvision's RandomResizedCrop) and the area
    uniformly; a draw that does not fit is retried, and after `attempts` misses the window is the whole image.
    """
    area = width * height
    for _ in range(attempts):
        target = rng.uniform(*area_range) * area
        ratio = rng.uniform(*ratio_range)  # w / h
        w = int(round(math.sqrt(target * ratio)))
        h = int(round(math.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            return left, top, w, h
    return 0, 0, width, height


def resize(img: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """uint8 [3, h, w] -> uint8 [3, height, width], bilinear without antialiasing (TF resize_images)."""
    out = F.interpolate(img[None].float(), size=(height, width), mode="bilinear", align_corners=False)
    return out[0].round_().clamp_(0, 255).to(torch.uint8)


def train_transform(img: torch.Tensor, rng: np.random.Generator, size: int, area_range, ratio_range,
                    attempts: int) -> torch.Tensor:
    _, h, w = img.shape
    left, top, cw, ch = sample_crop(w, h, rng, area_range, ratio_range, attempts)
    out = resize(img[:, top:top + ch, left:left + cw], size, size)
    return out.flip(-1) if rng.random() < 0.5 else out


def eval_transform(img: torch.Tensor, resize_min: int, size: int) -> torch.Tensor:
    _, h, w = img.shape
    scale = resize_min / min(h, w)
    nh, nw = int(h * scale), int(w * scale)  # truncated, as the reference's tf.cast to int32
    img = resize(img, nh, nw)
    top, left = (nh - size) // 2, (nw - size) // 2
    return img[:, top:top + size, left:left + size]


def decode(data: torch.Tensor, path: str) -> torch.Tensor:
    """File bytes -> uint8 RGB [3, H, W] on the CPU; DataError naming the file when it is not an image."""
    try:
        return decode_image(data, mode=ImageReadMode.RGB)
    except RuntimeError as e:
        raise DataError(f"{path}: cannot decode image: {e}") from None


def decode_on_device(datas: list[torch.Tensor], paths: list[str], device: torch.device) -> list[torch.Tensor]:
    """Decode a batch of file bytes on `device` (nvJPEG on CUDA); what it cannot read goes through the CPU."""
    if device.type == "cuda":
        try:
            return decode_jpeg(datas, mode=ImageReadMode.RGB, device=device)
        except RuntimeError:
            pass  # a PNG named .JPEG, or a JPEG nvJPEG rejects: one by one below
    out = []
    for data, path in zip(datas, paths):
        img = None
        if device.type == "cuda":
            try:
                img = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
            except RuntimeError:
                pass
        out.append(img if img is not None else decode(data, path).to(device))
    return out


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


class ImageSet(Dataset):
    """root/<wnid>/*.JPEG. train=True: random crops; False: eval crops. decode=False: raw bytes (GPU path)."""

    def __init__(self, root: str, cfg, train: bool, seed: int = 0, decode: bool = True):
        self.classes, self.samples = list_images(root)
        self.cfg, self.train, self.seed, self.decode = cfg, train, seed, decode
        self.epoch = 0  # set before each epoch's iterator is created (workers copy it)

    def __len__(self) -> int:
        return len(self.samples)

    def transform(self, img: torch.Tensor, index: int) -> torch.Tensor:
        c = self.cfg
        if self.train:
            return train_transform(img, sample_rng(self.seed, self.epoch, index), c.image_size, c.crop_area,
                                   c.crop_ratio, c.crop_attempts)
        return eval_transform(img, c.eval_resize, c.image_size)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            data = read_file(path)
        except (OSError, RuntimeError) as e:
            raise DataError(f"{path}: cannot read: {e}") from None
        if not self.decode:
            return data, label, index
        return self.transform(decode(data, path), index), label, index


def collate_bytes(batch):
    datas, labels, indices = zip(*batch)
    return list(datas), torch.tensor(labels), torch.tensor(indices)


def make_loader(dataset: ImageSet, batch_size: int, rank: int, world_size: int, num_workers: int,
                pin_memory: bool) -> DataLoader:
    """Train: shuffled, split over ranks (DistributedSampler, seed = run seed), full batches only.
    Eval: rank r takes images r, r + W, ... in order, every image exactly once over all ranks."""
    if dataset.train:
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True,
                                     seed=dataset.seed, drop_last=True)
    else:
        sampler = range(rank, len(dataset), world_size)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=dataset.train,
                      num_workers=num_workers, pin_memory=pin_memory,
                      collate_fn=None if dataset.decode else collate_bytes,
                      persistent_workers=False, prefetch_factor=4 if num_workers else None)


def device_batch(batch, dataset: ImageSet, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A loader batch -> (uint8 images [N, 3, S, S], labels [N]) on `device`, decoding there if needed."""
    images, labels, indices = batch
    labels = labels.to(device, non_blocking=True)
    if dataset.decode:
        return images.to(device, non_blocking=True), labels
    paths = [dataset.samples[i][0] for i in indices.tolist()]
    decoded = decode_on_device(images, paths, device)
    return torch.stack([dataset.transform(img, i) for img, i in zip(decoded, indices.tolist())]), labels


def normalize(images: torch.Tensor, mean_rgb) -> torch.Tensor:
    """uint8 [N, 3, S, S] -> float32 minus the per-channel means (no std), channels_last for the convnet."""
    mean = torch.tensor(mean_rgb, device=images.device, dtype=torch.float32).view(1, 3, 1, 1)
    return (images.float() - mean).contiguous(memory_format=torch.channels_last)
