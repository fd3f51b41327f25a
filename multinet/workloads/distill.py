"""Knowledge distillation (Hinton et al., 2015) as PyTorch's knowledge-distillation tutorial
trains it: a frozen teacher run under ``no_grad`` in eval mode, a student trained on the
temperature-softened KL term (T=2, weight 0.25) plus cross-entropy on the labels (0.75),
with Adam at lr 1e-3.

At the published size the teacher is ResNet-50 (25,557,032 parameters) and the student
ResNet-18 (11,689,512), both on 224x224 images and 1000 classes (ImageNet's shapes). Only
the student has an optimizer, so the three optimizer setups coincide here: the scenario
measures an asymmetric pair, a large forward without backward beside a smaller trained one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from multinet.scenarios import register
from multinet.workloads.base import Workload
from multinet.workloads.resnet import resnet18, resnet50

TEMPERATURE = 2.0
SOFT_WEIGHT, LABEL_WEIGHT = 0.25, 0.75


@dataclass(frozen=True)
class DistillSizes:
    image_size: int = 224
    width: int = 64
    classes: int = 1000


SIZES = {"tiny": DistillSizes(image_size=32, width=4, classes=10), "published": DistillSizes()}


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) at temperature T, scaled by T**2 as the tutorial writes it."""
    soft_targets = F.softmax(teacher_logits / TEMPERATURE, dim=-1)
    soft_prob = F.log_softmax(student_logits / TEMPERATURE, dim=-1)
    return (torch.sum(soft_targets * (soft_targets.log() - soft_prob)) / soft_prob.size()[0]
            * TEMPERATURE ** 2)


@register
class Distill(Workload):
    SIZES = SIZES
    name = "distill"
    description = "distillation: frozen ResNet-50 teacher (no_grad), ResNet-18 student, KL + CE"
    untrained = frozenset({"teacher"})
    expected_flow = {"loss_soft": frozenset({"student"}), "loss_label": frozenset({"student"})}

    def build_networks(self):
        s = self.dims
        teacher = resnet50(s.classes, s.width)
        teacher.requires_grad_(False)
        teacher.eval()  # a trained teacher's batch norms use their running statistics
        return {"student": resnet18(s.classes, s.width), "teacher": teacher}

    def make_batch(self, batch_size, generator):
        s = self.dims
        return {"images": torch.randn(batch_size, 3, s.image_size, s.image_size,
                                      generator=generator),
                "labels": torch.randint(0, s.classes, (batch_size,), generator=generator)}

    def loss_terms(self, networks, batch):
        with torch.no_grad():
            teacher_logits = networks["teacher"](batch["images"])
        student_logits = networks["student"](batch["images"])
        return {"loss_soft": SOFT_WEIGHT * soft_target_loss(student_logits, teacher_logits),
                "loss_label": LABEL_WEIGHT * F.cross_entropy(student_logits, batch["labels"])}
