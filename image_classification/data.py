"""ImageNet as extracted by extract.py (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG) to batches on the training
device.

Classes are the wnids in sorted order (index 0..999; the reference's TF label is index + 1). Preprocessing is
the reference's (imagenet_preprocessing.py @ v0.5, spec section 2):
  train: a crop window drawn by TF's sample_distorted_bounding_box on the whole image (area_range [0.05, 1],
         aspect_ratio_range [0.75, 1.33], min_object_covered 0.1, max_attempts 100, else the whole image),
         flipped left-right with p = 0.5, resized to 224x224 bilinear without antialiasing and without
         keeping the aspect ratio;
  eval:  shorter side resized to 256 (sizes truncated to int, in float32 as the reference's tf.cast),
         central 224x224 crop;
  both:  R/G/B means 123.68/116.78/103.94 subtracted on the 0-255 scale, no division by a std (`normalize`).

One pipeline for every device (CPU tests run the code a CUDA run runs):
  1. loader workers (ImageSet, collate): read each file's bytes, read its size from the JPEG/PNG header, draw
     the crop window and the flip from a generator seeded with (seed, epoch, image index), and send one
     byte buffer per batch with the per-image geometry (so any number of workers or ranks, and a resumed run,
     see the same crops; one shared-memory buffer per batch, not one file descriptor per image);
  2. `device_batch`, in the training process: decode on the device (CUDA: nvJPEG, the whole batch in one
     call, on a side stream, see `decode`; CPU: libjpeg-turbo), then crop, resize and flip the whole batch
     at once with one gather (`resample`): [N, 3, S, S] float32, channels_last, values on the 0-255 scale.
Decoding converts grayscale and CMYK JPEGs to RGB (ImageNet has a PNG named .JPEG, ~22 CMYK and some
grayscale JPEGs); nothing is skipped. A file that cannot be read, parsed or decoded raises DataError naming
it.

This module imports only torch, torchvision, numpy and the standard library (bench.py runs it on a bare GPU
machine).
"""

import functools
import os
import struct
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision.io import ImageReadMode, decode_image, decode_jpeg

IMAGE_EXTENSIONS = (".JPEG", ".jpeg", ".jpg", ".JPG")
# torchvision 0.29 warns on every decode that TorchCodec will take image decoding over; torchvision.io is what
# the pinned torchvision offers for nvJPEG, so the warning is silenced here (once per process, not per image).
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                        category=DeprecationWarning)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, extended, progressive, lossless; Huffman or arithmetic): the frame
# header after them holds the precision, height, width and number of components.
SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# How an image is decoded on CUDA: nvJPEG (JPEGs with 1 or 3 components), or libjpeg/libpng on the CPU and
# then copied (the PNG, and CMYK/YCCK JPEGs, whose 4 components nvJPEG's RGB output does not convert).
NVJPEG, HOST = 0, 1


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


def image_header(data: bytes, path: str) -> tuple[int, int, int]:
    """(height, width, NVJPEG or HOST) from a JPEG's frame header or a PNG's IHDR, without decoding."""
    if data[:8] == PNG_SIGNATURE:
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise DataError(f"{path}: cannot decode image: truncated PNG header")
        width, height = struct.unpack(">II", data[16:24])
        return height, width, HOST
    if data[:2] != b"\xff\xd8":
        raise DataError(f"{path}: cannot decode image: neither a JPEG nor a PNG file")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise DataError(f"{path}: cannot decode image: corrupt JPEG header (byte {i})")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            break
        if marker in SOF_MARKERS and i + 10 <= len(data):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            components = data[i + 9]
            if height == 0 or width == 0:
                raise DataError(f"{path}: cannot decode image: JPEG frame of {width}x{height} pixels")
            return height, width, NVJPEG if components in (1, 3) else HOST
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    raise DataError(f"{path}: cannot decode image: no JPEG frame header (truncated?)")


# ---- TF's sample_distorted_bounding_box (tensorflow/core/kernels/image/sample_distorted_bounding_box_op.cc),
# ported with its float32 arithmetic and round-half-even (lrintf). Per attempt: the aspect ratio w/h is
# uniform in aspect_ratio_range; the crop HEIGHT is uniform (integers) between the heights that give the
# smallest and the largest area of area_range at that ratio (clamped to fit the image); width = round(height
# * ratio); rounding is corrected by one pixel up or down; a window outside the area range is a miss; the
# window's offset is uniform in [0, H - h) x [0, W - w) (TF's Uniform(n) never draws n). A hit must also
# cover min_object_covered of the bounding box, here the whole image (v0.5 passes [0, 0, 1, 1]), i.e. hold at
# least 10 % of the image's area: drawn from [0.05, 1], kept from [0.1, 1]. After max_attempts misses the
# window is the whole image.

def _generate_random_crop(width: int, height: int, min_relative_area: float, max_relative_area: float,
                          aspect: np.float32, rng: np.random.Generator) -> tuple[int, int, int, int] | None:
    """GenerateRandomCrop: (left, top, w, h), or None when the draw misses the constraints."""
    f32 = np.float32
    min_area = f32(min_relative_area) * f32(width) * f32(height)
    max_area = f32(max_relative_area) * f32(width) * f32(height)
    h = int(np.rint(np.sqrt(min_area / aspect)))
    max_h = int(np.rint(np.sqrt(max_area / aspect)))
    if np.rint(f32(max_h) * aspect) > width:
        # the largest max_h with round(max_h * aspect) <= width (C++: double arithmetic, truncation)
        max_h = int((width + 0.5 - float(f32(1e-7))) / float(aspect))
        if np.rint(f32(max_h) * aspect) > width:
            max_h -= 1
    max_h = min(max_h, height)
    h = min(h, max_h)
    if h < max_h:
        h += int(rng.integers(max_h - h + 1))  # uniform in [h, max_h]
    w = int(np.rint(f32(h) * aspect))
    area = f32(w * h)
    if area < min_area:  # rounding: try one pixel taller
        h += 1
        w = int(np.rint(f32(h) * aspect))
        area = f32(w * h)
    if area > max_area:  # rounding: try one pixel shorter
        h -= 1
        w = int(np.rint(f32(h) * aspect))
        area = f32(w * h)
    if area < min_area or area > max_area or w > width or h > height or w <= 0 or h <= 0:
        return None
    top = int(rng.integers(height - h)) if h < height else 0
    left = int(rng.integers(width - w)) if w < width else 0
    return left, top, w, h


def sample_distorted_bounding_box(width: int, height: int, rng: np.random.Generator,
                                  area_range=(0.05, 1.0), aspect_ratio_range=(0.75, 1.33),
                                  min_object_covered: float = 0.1,
                                  max_attempts: int = 100) -> tuple[int, int, int, int]:
    """(left, top, w, h) of the crop window of a width x height image, drawn as TF draws it (above)."""
    low, high = np.float32(aspect_ratio_range[0]), np.float32(aspect_ratio_range[1])
    image_area = np.float32(width * height)
    for _ in range(max_attempts):
        aspect = rng.random(dtype=np.float32) * (high - low) + low
        crop = _generate_random_crop(width, height, area_range[0], area_range[1], aspect, rng)
        # SatisfiesOverlapConstraints with the whole image as the one box: the share of it the crop covers
        if crop is not None and crop[2] * crop[3] >= 1 and \
                np.float32(crop[2] * crop[3]) / image_area >= np.float32(min_object_covered):
            return crop
    return 0, 0, width, height


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


def eval_geometry(height: int, width: int, resize_min: int, size: int) -> tuple[int, int, int, int]:
    """(resized height, resized width, top, left) of the eval crop: the shorter side scaled to resize_min
    (float32, truncated, as _smallest_size_at_least @ v0.5), then the central size x size window."""
    scale = np.float32(resize_min) / np.float32(min(height, width))
    new_h, new_w = int(np.float32(height) * scale), int(np.float32(width) * scale)
    return new_h, new_w, (new_h - size) // 2, (new_w - size) // 2


class ImageSet(Dataset):
    """root/<wnid>/*.JPEG; items are a file's bytes and the geometry of its crop (train=True: TF's random
    window and flip; False: the eval resize and central crop), decoded later by `device_batch`."""

    def __init__(self, root: str, cfg, train: bool, seed: int = 0):
        self.classes, self.samples = list_images(root)
        self.cfg, self.train, self.seed = cfg, train, seed
        self.epoch = 0  # set before each epoch's iterator is created (workers copy it)

    def __len__(self) -> int:
        return len(self.samples)

    def geometry(self, height: int, width: int, index: int) -> tuple[list[int], list[float]]:
        """Per axis (y, x) of the source image: resize `scale` (source pixels per output pixel, float32 as
        F.interpolate computes it), `start` (first output index on the resized grid), `origin` (first source
        pixel of the window) and `length` (source pixels in the window); plus the flip. The output pixel r of
        an axis samples source coordinate origin + clamp(scale * (start + r + 0.5) - 0.5, 0, length - 1)."""
        c, size = self.cfg, self.cfg.image_size
        if self.train:
            rng = sample_rng(self.seed, self.epoch, index)
            left, top, w, h = sample_distorted_bounding_box(width, height, rng, c.area_range,
                                                            c.aspect_ratio_range, c.min_object_covered,
                                                            c.max_attempts)
            flip = int(rng.random() < 0.5)  # tf.image.random_flip_left_right
            ints = [0, top, h, 0, left, w, flip]
            scales = [np.float32(h) / np.float32(size), np.float32(w) / np.float32(size)]
        else:
            new_h, new_w, top, left = eval_geometry(height, width, c.eval_resize, size)
            ints = [top, 0, height, left, 0, width, 0]
            scales = [np.float32(height) / np.float32(new_h), np.float32(width) / np.float32(new_w)]
        return ints, scales

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise DataError(f"{path}: cannot read: {e}") from None
        height, width, decoder = image_header(data, path)
        ints, scales = self.geometry(height, width, index)
        return np.frombuffer(data, dtype=np.uint8), [height, width, decoder, label, index, *ints], scales


# Columns of a batch's "meta" tensor (int64 [N, 12]); "scale" is float32 [N, 2] (y, x).
HEIGHT, WIDTH, DECODER, LABEL, INDEX = 0, 1, 2, 3, 4
Y_START, Y_ORIGIN, Y_LENGTH, X_START, X_ORIGIN, X_LENGTH, FLIP = 5, 6, 7, 8, 9, 10, 11


def collate(items) -> dict[str, torch.Tensor]:
    """One byte buffer for the whole batch, so a worker sends one shared-memory block per batch:
    data uint8 [sum of file sizes], offsets int64 [N + 1], meta int64 [N, 12], scale float32 [N, 2]."""
    datas, metas, scales = zip(*items)
    offsets = np.zeros(len(datas) + 1, dtype=np.int64)
    np.cumsum([len(d) for d in datas], out=offsets[1:])
    return {"data": torch.from_numpy(np.concatenate(datas)), "offsets": torch.from_numpy(offsets),
            "meta": torch.tensor(metas, dtype=torch.int64),
            "scale": torch.from_numpy(np.asarray(scales, dtype=np.float32))}


def make_loader(dataset: ImageSet, batch_size: int, rank: int, world_size: int, num_workers: int,
                device: torch.device, timeout: float = 0) -> DataLoader:
    """Train: shuffled, split over ranks (DistributedSampler, seed = run seed), full batches only.
    Eval: rank r takes images r, r + W, ... in order, every image exactly once over all ranks.
    timeout > 0 (with workers): a batch that takes longer raises instead of hanging the run."""
    if dataset.train:
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True,
                                     seed=dataset.seed, drop_last=True)
    else:
        sampler = range(rank, len(dataset), world_size)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=dataset.train,
                      num_workers=num_workers, pin_memory=device.type == "cuda", collate_fn=collate,
                      timeout=timeout if num_workers else 0, persistent_workers=False,
                      prefetch_factor=4 if num_workers else None)


# ---- on the training device ----

@functools.cache
def side_stream(device: torch.device) -> torch.cuda.Stream:
    return torch.cuda.Stream(device)


def decode(batch: dict, paths: list[str], device: torch.device) -> list[torch.Tensor]:
    """The batch's files -> uint8 RGB [3, H, W] tensors on `device`; DataError naming a file that fails.

    CUDA: torchvision's decode_jpeg allocates its outputs on the caller's current stream, then writes them
    from a private stream that never waits for the caller's (and nvJPEG's hardware engine ignores stream
    order anyway: pytorch/vision PR 9606). Decoding on the main stream would let it be handed memory that the
    previous step's queued kernels still read. So it runs with a side stream current that no kernel ever
    uses: its pool holds only earlier decode outputs, and `resample` marks those with record_stream(main),
    so the allocator gives their memory back only once the main stream has finished reading them. The call
    returns after the decode (torchvision synchronises its stream, not the main one), so the host queues the
    next step while the GPU still runs the previous one."""
    data, offsets, meta = batch["data"], batch["offsets"].tolist(), batch["meta"]
    chunks = [data[offsets[i]:offsets[i + 1]] for i in range(len(paths))]
    out: list[torch.Tensor | None] = [None] * len(paths)
    if device.type == "cuda":
        stream = side_stream(device)
        with torch.cuda.stream(stream):
            gpu = [i for i, decoder in enumerate(meta[:, DECODER].tolist()) if decoder == NVJPEG]
            try:
                images = decode_jpeg([chunks[i] for i in gpu], mode=ImageReadMode.RGB, device=device) \
                    if gpu else []
            except RuntimeError:  # a file nvJPEG rejects: find it, one by one, then on the host
                images = []
                for i in gpu:
                    try:
                        images.append(decode_jpeg(chunks[i], mode=ImageReadMode.RGB, device=device))
                    except RuntimeError:
                        images.append(None)
            for i, img in zip(gpu, images):
                out[i] = img
            for i in range(len(paths)):
                if out[i] is None:
                    out[i] = decode_on_host(chunks[i], paths[i]).pin_memory().to(device, non_blocking=True)
        # the copies of host-decoded images ran on the side stream
        torch.cuda.current_stream(device).wait_stream(stream)
    else:
        out = [decode_on_host(chunk, path) for chunk, path in zip(chunks, paths)]
    for img, (height, width), path in zip(out, meta[:, :2].tolist(), paths):
        if tuple(img.shape[1:]) != (height, width):
            raise DataError(f"{path}: cannot decode image: decoded {tuple(img.shape[1:])}, header says "
                            f"{(height, width)}")
    return out


def decode_on_host(data: torch.Tensor, path: str) -> torch.Tensor:
    """File bytes -> uint8 RGB [3, H, W] on the CPU (libjpeg-turbo, libpng); grayscale and CMYK to RGB."""
    try:
        return decode_image(data, mode=ImageReadMode.RGB)
    except RuntimeError as e:
        raise DataError(f"{path}: cannot decode image: {e}") from None


@functools.cache
def _ramp(size: int, device: torch.device) -> torch.Tensor:
    """float32 [size]: 0.5, 1.5, ... (output pixel centres), built once per device."""
    return torch.arange(size, device=device, dtype=torch.float32) + 0.5


def _axis(scale: torch.Tensor, start: torch.Tensor, origin: torch.Tensor, length: torch.Tensor, size: int):
    """Source indices i0, i1 (int64 [N, size]) and weight of i1 (float32 [N, size]) along one axis, as
    F.interpolate(mode="bilinear", align_corners=False, antialias=False) computes them (half-pixel centres,
    clamped at the window's edges)."""
    src = scale[:, None] * (start[:, None].float() + _ramp(size, scale.device)[None]) - 0.5
    src = src.clamp_min_(0)
    i0 = src.long()  # truncation = floor, src >= 0
    i1 = i0 + (i0 < length[:, None] - 1).long()
    return origin[:, None] + i0, origin[:, None] + i1, src - i0


def resample(images: list[torch.Tensor], meta: torch.Tensor, scale: torch.Tensor, size: int) -> torch.Tensor:
    """Crop, resize (bilinear, no antialiasing) and flip a batch of decoded images of any sizes in one pass:
    list of uint8 [3, H_n, W_n] -> float32 [N, 3, size, size] in channels_last memory, 0-255 scale.

    The images go into one buffer of RGB0 pixels read as int32 (4 bytes: one gather moves a whole pixel,
    and the result comes out channels_last), and each output pixel gathers its four source pixels by index;
    meta (int64 [N, 12]) and scale (float32 [N, 2]) are the batch's geometry from the workers, already on the
    device."""
    device = images[0].device
    pixels = torch.cat([F.pad(img.permute(1, 2, 0), (0, 1)).view(-1) for img in images]).view(torch.int32)
    if device.type == "cuda":  # `decode`: images came from the side stream's pool; free them after this
        main = torch.cuda.current_stream(device)
        for img in images:
            img.record_stream(main)
    plane = meta[:, HEIGHT] * meta[:, WIDTH]  # [N] pixels per image
    base = torch.cumsum(plane, 0) - plane  # [N] first pixel of each image in `pixels`
    y0, y1, wy = _axis(scale[:, 0], meta[:, Y_START], meta[:, Y_ORIGIN], meta[:, Y_LENGTH], size)
    x0, x1, wx = _axis(scale[:, 1], meta[:, X_START], meta[:, X_ORIGIN], meta[:, X_LENGTH], size)
    flip = meta[:, FLIP, None].bool()  # mirror the output columns: read the window's columns right to left
    x0, x1, wx = (torch.where(flip, t.flip(1), t) for t in (x0, x1, wx))
    # Output pixel (n, r, c) reads pixels[base_n + y_r * W_n + x_c]: [N, size, size] indices of whole pixels.
    rows0, rows1 = ((base[:, None] + y * meta[:, WIDTH, None])[:, :, None] for y in (y0, y1))  # [N, size, 1]
    cols0, cols1 = x0[:, None, :], x1[:, None, :]  # [N, 1, size]

    def take(rows, cols):  # -> float32 [N, size, size, 3]
        return pixels.take(rows + cols)[..., None].view(torch.uint8)[..., :3].float()  # int32 -> R, G, B, 0

    wy, wx = wy[:, :, None, None], wx[:, None, :, None]
    top = torch.lerp(take(rows0, cols0), take(rows0, cols1), wx)
    bottom = torch.lerp(take(rows1, cols0), take(rows1, cols1), wx)
    return torch.lerp(top, bottom, wy).permute(0, 3, 1, 2)  # [N, 3, size, size], channels_last


def device_batch(batch: dict, dataset: ImageSet, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A loader batch -> (float32 images [N, 3, S, S] channels_last on the 0-255 scale, labels int64 [N]) on
    `device`. No host synchronisation: the geometry travels pinned and non-blocking."""
    meta_host = batch["meta"]
    paths = [dataset.samples[i][0] for i in meta_host[:, INDEX].tolist()]
    images = decode(batch, paths, device)
    meta = meta_host.to(device, non_blocking=True)
    scale = batch["scale"].to(device, non_blocking=True)
    return resample(images, meta, scale, dataset.cfg.image_size), meta[:, LABEL]


@functools.cache
def mean_tensor(mean_rgb: tuple[float, float, float], device: torch.device) -> torch.Tensor:
    """float32 [1, 3, 1, 1] on `device`, built once (a list copied to a GPU is a blocking copy)."""
    return torch.tensor(mean_rgb, dtype=torch.float32).view(1, 3, 1, 1).to(device)


def normalize(images: torch.Tensor, mean_rgb) -> torch.Tensor:
    """float32 [N, 3, S, S] on the 0-255 scale -> minus the per-channel means (no std), channels_last."""
    out = images - mean_tensor(tuple(mean_rgb), images.device)
    return out.contiguous(memory_format=torch.channels_last)
