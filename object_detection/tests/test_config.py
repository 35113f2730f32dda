"""config.py: the presets build the models they describe; the tiny one fits the tiny dataset."""

import inspect

import torch

import config
import data
import model


def test_reference_preset_builds_the_reference_model():
    cfg = config.PRESETS["reference"]
    m = model.build_model(**config.model_kwargs(cfg))
    assert sum(p.numel() for p in m.parameters()) == 44_347_573
    assert m.transform.min_size == (800,) and m.transform.max_size == 1333
    assert m.rpn._pre_nms_top_n == {"training": 2000, "testing": 1000}
    assert m.rpn._post_nms_top_n == {"training": 1000, "testing": 1000}
    assert m.rpn.fg_bg_sampler.batch_size_per_image == 256
    assert m.roi_heads.fg_bg_sampler.batch_size_per_image == 512
    assert m.roi_heads.fg_bg_sampler.positive_fraction == 0.25
    assert m.roi_heads.detections_per_img == 100 and m.roi_heads.nms_thresh == 0.5
    assert m.roi_heads.score_thresh == 0.05
    assert m.rpn.head.cls_logits.out_channels == 3  # one size x three ratios per location


def test_tiny_preset_matches_the_tiny_dataset(tiny_data):
    cfg = config.PRESETS["tiny"]
    train = data.CocoDetection(data.coco_splits(tiny_data)["train"], train=True)
    assert cfg.num_classes == train.category_map.num_classes
    m = model.build_model(**config.model_kwargs(cfg))
    assert m.backbone.body.layer4[0].conv3.out_channels == 256 and m.backbone.out_channels == 32
    assert 0.5e6 < sum(p.numel() for p in m.parameters()) < 3e6
    m.eval()
    with torch.no_grad():
        out = m([train[0][0]])
    assert len(out) == 1 and set(out[0]) == {"boxes", "labels", "scores", "masks"}


def test_model_kwargs_cover_every_model_argument():
    arguments = set(inspect.signature(model.build_model).parameters)
    assert set(config.model_kwargs(config.PRESETS["tiny"])) == arguments
