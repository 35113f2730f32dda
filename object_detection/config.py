"""Hyperparameters of Mask R-CNN R-50-FPN on COCO: the MLPerf Training v0.5 reference preset and a tiny one.

Sources are named per field; "spec" is specs/object_detection.md of this suite, "@ v0.5" the reference
mlcommons/training object_detection/ at the v0.5 tag (configs/e2e_mask_rcnn_R_50_FPN_1x.yaml, defaults.py,
run_and_time.sh). The tiny preset runs the same code on make_tiny_dataset.py's data on two CPU cores (spec
section 8). The training fields (optimiser, schedule, targets) are read by train.py;
`model_kwargs` gives model.build_model its arguments.

This module imports only the standard library: bench.py and model.py may import it on a bare GPU machine.
"""

import bisect
import dataclasses


@dataclasses.dataclass(frozen=True)
class Config:
    # Model (spec section 1): 80 COCO classes + background; ResNet-50 stem width 64 (stages 256..2048), FPN
    # 256 channels, one anchor size per level P2..P6, box MLP 1024, mask head 4 x 256 channels.
    num_classes: int = 81
    stem_width: int = 64
    fpn_channels: int = 256
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
    box_mlp: int = 1024
    mask_channels: int = 256
    # Input (spec section 1): shorter side 800 unless the longer would exceed 1333, same at test; flip p=0.5
    # in training only.
    min_size: int = 800
    max_size: int = 1333
    flip_prob: float = 0.5
    # RPN and RoI sampling (defaults.py @ v0.5): 256 anchors per image; 2000 pre-NMS per level in training,
    # 1000 at test; post-NMS 2000 per 2-image GPU batch in the reference (FPN_POST_NMS_TOP_N_TRAIN), which the
    # rules allow as 1000 per image (spec section 7, pitfall 1): torchvision counts per image. Test: 1000 per
    # image. 512 RoIs per image, 100 detections per image.
    rpn_batch_size_per_image: int = 256
    rpn_pre_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_train: int = 1000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_test: int = 1000
    box_batch_size_per_image: int = 512
    box_detections_per_img: int = 100
    # Optimiser (run_and_time.sh @ v0.5, single GPU, spec section 3): SGD momentum 0.9, 2 images per
    # iteration, base lr 0.0025 (0.02 x 2/16); weight decay 1e-4 on weights, none on biases, whose lr is 2x.
    global_batch_size: int = 2
    base_lr: float = 0.0025
    momentum: float = 0.9
    weight_decay: float = 1e-4
    bias_lr_factor: float = 2.0
    weight_decay_bias: float = 0.0
    # Schedule (spec section 3): linear warmup over 500 iterations from 1/3 of the base lr; x0.1 at 480,000
    # and 640,000; at most 720,000 iterations (the 1x schedule, ~12.3 epochs).
    warmup_iters: int = 500
    warmup_factor: float = 1 / 3
    decay_steps: tuple[int, ...] = (480_000, 640_000)
    decay_factor: float = 0.1
    max_iters: int = 720_000
    # Quality (spec section 4): evaluate after every epoch on minival; stop when both are reached (>=).
    bbox_target: float = 0.377
    segm_target: float = 0.339
    # Run settings (not hyperparameters): epochs to run at most (0: as many as max_iters needs; train.py
    # --max-epochs overrides), torch threads on CPU (0: torch's default; OMP_NUM_THREADS wins), progress every
    # N iterations (stderr), images per evaluation forward pass per process (the reference's
    # TEST.IMS_PER_BATCH is 1; 8 amortise a forward's fixed costs, and the images of a batch are of one
    # orientation so they pad little; the masks of each image are pasted one image at a time), and how often
    # (iterations) training asks whether the previous epoch's COCO scoring, which runs in a worker process,
    # has finished: one 4-byte broadcast and a device sync each time (NVIDIA's v0.7 code asked every
    # iteration); a run stops at most this many iterations after its result is known.
    max_epochs: int = 0
    cpu_threads: int = 0
    log_every: int = 100
    eval_batch_size: int = 8
    eval_poll_every: int = 20


def model_kwargs(cfg: Config) -> dict:
    """The arguments of model.build_model for a preset."""
    names = ("num_classes", "stem_width", "fpn_channels", "anchor_sizes", "box_mlp", "mask_channels",
             "min_size", "max_size", "rpn_batch_size_per_image", "rpn_pre_nms_top_n_train",
             "rpn_post_nms_top_n_train", "rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_test",
             "box_batch_size_per_image", "box_detections_per_img")
    return {name: getattr(cfg, name) for name in names}


def scale_config(cfg: Config, global_batch_size: int) -> Config:
    """The allowed batch scaling (spec section 3): lr linear in the batch, decay and last iterations inverse
    to it, warmup unchanged (batch 16 from the reference's 2 gives Detectron's 1x: lr 0.02, 60k/80k/90k)."""
    k = cfg.global_batch_size / global_batch_size
    return dataclasses.replace(
        cfg, global_batch_size=global_batch_size, base_lr=cfg.base_lr / k,
        decay_steps=tuple(round(s * k) for s in cfg.decay_steps), max_iters=round(cfg.max_iters * k))


def lr_factor(it: int, cfg: Config) -> float:
    """maskrcnn-benchmark's WarmupMultiStepLR at iteration `it` (0-based): linear warmup from warmup_factor
    over warmup_iters, times decay_factor per decay step passed (bisect_right: x0.1 from iteration 480000)."""
    warmup = 1.0
    if it < cfg.warmup_iters:
        alpha = it / cfg.warmup_iters
        warmup = cfg.warmup_factor * (1 - alpha) + alpha
    return warmup * cfg.decay_factor ** bisect.bisect_right(cfg.decay_steps, it)


def iterations_per_epoch(train_images: int, global_batch_size: int) -> int:
    """The reference's epoch length in iterations: N // batch + 1 (data/build.py @ v0.5, spec pitfall 3)."""
    return train_images // global_batch_size + 1


# Spec section 8: the same topology at width /8 (stem 8, stages 32..256), 3 shape classes + background,
# shorter side 96 / longer <= 128, FPN 32, anchors 8..128, 64 RPN anchors and 64 RoIs per image, pre-NMS 200
# per level and 100 per image after NMS at test, box MLP 128, mask head 16 channels. Training keeps up to
# 1000 proposals per image after NMS (at most 5 x 200 exist before it), the reference's per-image count,
# which the 0.7.0 compliance check (num_image_candidates a multiple of 1000) also asks of a tiny log. Batch 4,
# warmup from 1/3, x0.1 at 2/3 and 8/9 of the iterations (the 480k/640k of 720k pattern), 12 epochs of the 157
# training images that make_tiny_dataset.py leaves (40 iterations each). The learning rate, 16x the
# reference's per image (0.0025 for 2 images), makes the tiny model learn in 12 epochs; with the spec's lr
# 0.02, 50 proposals per image and 8 epochs it ended at bbox AP 0.25. It must be a multiple of 0.02: the 0.7.0
# closed maskrcnn rules check is_integer(opt_base_learning_rate / 0.02); lr 0.03 failed CI on exactly that.
# lr 0.04 with a 50-iteration warmup diverged for some seeds: 2 of 24 drawn seeds (695425564, 847876999) went
# to a non-finite loss at iterations 73 and 60, right after the warmup reached 0.04 (gradient norms 1e6-5e7).
# The reference clips nothing; what it has is a warmup, so here lr 0.04 reached after a 200-iteration warmup
# (5 of the 12 epochs; the decays at 320 and 427 follow it): those two seeds met both targets after 9 and 8
# epochs. Targets about 0.1 below what full runs reach: box AP 0.45, mask AP 0.60 (chance is near 0;
# shuffled training category ids stay under bbox 0.23 / segm 0.28 over all 12 epochs).
# README: the 20-seed result of make score.
TINY_ITERS = 12 * iterations_per_epoch(157, 4)
TINY = Config(
    num_classes=4,
    stem_width=8,
    fpn_channels=32,
    anchor_sizes=(8, 16, 32, 64, 128),
    box_mlp=128,
    mask_channels=16,
    min_size=96,
    max_size=128,
    rpn_batch_size_per_image=64,
    rpn_pre_nms_top_n_train=200,
    rpn_post_nms_top_n_train=1000,
    rpn_pre_nms_top_n_test=200,
    rpn_post_nms_top_n_test=100,
    box_batch_size_per_image=64,
    global_batch_size=4,
    base_lr=0.04,
    warmup_iters=200,
    decay_steps=(round(TINY_ITERS * 2 / 3), round(TINY_ITERS * 8 / 9)),
    max_iters=TINY_ITERS,
    bbox_target=0.45,
    segm_target=0.60,
    cpu_threads=1,
    log_every=10,
    eval_batch_size=4,
    eval_poll_every=5,
)

PRESETS = {"reference": Config(), "tiny": TINY}
