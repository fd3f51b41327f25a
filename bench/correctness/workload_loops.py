"""The real workloads' training loops, each written the way its reference code writes it:
PyTorch examples' ``dcgan/main.py`` and junyanz CycleGAN's ``optimize_parameters`` (in
``gan_loops``), pranz24's SAC ``update_parameters``, openai/CLIP's loss, and PyTorch's
knowledge-distillation tutorial. Each keeps the reference code's optimizers and
hyperparameters, its order of updates, its ``zero_grad``/``backward``/``step`` calls (two
backward passes where it makes two), and its way of keeping a network out of an update
(``set_requires_grad``, or nothing at all where the gradients it leaves are dropped before
they are used). Each update's forward runs in one ``forward()`` context (autocast under
bf16), as the harness runs it.

Sizes are the harness's size names, each the reference's at ``published`` and a small one
at ``tiny`` for the CPU. Under ``adamw`` and ``sgd``, which the reference code does not use,
AdamW takes Adam's hyperparameters and SGD the harness's stated ones.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.correctness.base import ADAM, Loop, Record, make_optimizer
from bench.correctness.clip_networks import TextEncoder
from bench.correctness.gan_loops import Cyclegan, Dcgan
from bench.correctness.resnet import resnet18, resnet50
from bench.correctness.sac_networks import (GaussianPolicy, Mlp, QNetwork, hard_update,
                                            soft_update)


class Sac(Loop):
    """SAC.update_parameters with ``automatic_entropy_tuning`` on and the default
    ``target_update_interval`` of 1: the critics' update, the policy's (the critics not
    frozen: their gradients are dropped by the next ``critic_optim.zero_grad()``), the
    temperature's, then ``soft_update`` of the target critics.

    One departure: pranz24 starts ``self.alpha`` at ``args.alpha`` (0.2) while ``log_alpha``
    starts at 0, so its very first update alone uses 0.2 and every later one
    ``log_alpha.exp()``; the harness uses ``log_alpha.exp()`` from the start, and so does
    this loop.

    At the REDQ sizes the critics are REDQ's (``REDQSACAgent`` in watchernyu/REDQ's
    ``redq_sac.py``): ``num_Q`` Mlp critics and as many targets, built critics first as the
    harness builds them; the target is the minimum over ``num_min`` target critics drawn at
    random (drawn with the batch, where REDQ calls ``np.random.choice``), the critics' loss
    REDQ's mean over all their errors times ``num_Q``, and the policy's loss takes their
    mean, the critics frozen. The update order stays pranz24's, one Adam over all critics
    (where REDQ keeps one per critic: Adam's arithmetic is per parameter either way)."""

    sizes = ("tiny", "published", "tiny-redq", "published-redq")
    # HalfCheetah's; hidden_size
    DIMS = {"tiny": (5, 2, 16), "published": (17, 6, 256), "tiny-redq": (5, 2, 16),
            "published-redq": (17, 6, 256)}
    NUM_Q = {"tiny-redq": 10, "published-redq": 10}  # REDQ's num_Q; elsewhere pranz24's twin
    num_min = 2
    untrained = frozenset({"critic_target"})
    gamma, tau = 0.99, 0.005

    def networks(self, n_networks):
        num_inputs, num_actions, hidden_size = self.DIMS[self.size]
        self.num_Q = self.NUM_Q.get(self.size, 0)
        if self.num_Q:
            def mlps():
                return nn.ModuleList(Mlp(num_inputs + num_actions, 1, (hidden_size, hidden_size))
                                     for _ in range(self.num_Q))
            critic, critic_target = mlps(), mlps()
            for q_target_net, q_net in zip(critic_target, critic):
                q_target_net.load_state_dict(q_net.state_dict())
        else:
            critic = QNetwork(num_inputs, num_actions, hidden_size)
            critic_target = QNetwork(num_inputs, num_actions, hidden_size)
            hard_update(critic_target, critic)
        # Target Entropy = -dim(A) (e.g. , -6 for HalfCheetah-v2) as given in the paper:
        # -torch.prod(torch.Tensor(action_space.shape)).item()
        self.target_entropy = -float(num_actions)
        log_alpha = torch.zeros(1, requires_grad=True)
        policy = GaussianPolicy(num_inputs, num_actions, hidden_size)
        self.alpha = None  # log_alpha.exp(), once log_alpha is on its device
        return {"critic": critic, "actor": policy, "temperature": [log_alpha],
                "critic_target": critic_target}

    def optimizer(self, kind, params):
        if kind in ADAM:  # Adam(..., lr=args.lr), lr 0.0003
            return ADAM[kind](params, lr=0.0003)
        return make_optimizer(kind, params)

    def optimizers(self, nets, kind):
        return {"critic": self.optimizer(kind, nets["critic"].parameters()),  # critic_optim
                "actor": self.optimizer(kind, nets["actor"].parameters()),  # policy_optim
                "temperature": self.optimizer(kind, nets["temperature"])}  # alpha_optim

    def batch(self, n, g):
        """A replay-memory sample (reward and mask as columns, as update_parameters
        unsqueezes them), then the two N(0, 1) draws of the policy's ``rsample``."""
        num_inputs, num_actions, _ = self.DIMS[self.size]
        state = torch.randn(n, num_inputs, generator=g)
        action = torch.rand(n, num_actions, generator=g) * 2 - 1
        reward = torch.randn(n, 1, generator=g)
        next_state = torch.randn(n, num_inputs, generator=g)
        mask = (torch.rand(n, 1, generator=g) > 0.01).float()  # float(not done)
        noise = torch.randn(n, num_actions, generator=g)
        batch = {"state": state, "action": action, "reward": reward, "next_state": next_state,
                 "mask": mask, "noise": noise, "next_noise": torch.randn(n, num_actions,
                                                                         generator=g)}
        if self.size in self.NUM_Q:  # REDQ's sample_idxs, without replacement
            batch["in_target"] = torch.randperm(self.NUM_Q[self.size], generator=g)[:self.num_min]
        return batch

    def redq_target(self, critic_target, next_state_batch, next_state_action,
                    next_state_log_pi, reward_batch, mask_batch, sample_idxs):
        """REDQ's get_redq_q_target_no_grad (q_target_mode 'min'), on pranz24's names."""
        q_prediction_next_list = []
        for sample_idx in sample_idxs:
            q_prediction_next = critic_target[sample_idx](
                torch.cat([next_state_batch, next_state_action], 1))
            q_prediction_next_list.append(q_prediction_next)
        q_prediction_next_cat = torch.cat(q_prediction_next_list, 1)
        min_q, min_indices = torch.min(q_prediction_next_cat, dim=1, keepdim=True)
        next_q_with_log_prob = min_q - self.alpha * next_state_log_pi
        return reward_batch + mask_batch * self.gamma * next_q_with_log_prob

    def redq_q_loss(self, critic, state_batch, action_batch, y_q):
        q_prediction_list = []
        for q_i in range(self.num_Q):
            q_prediction = critic[q_i](torch.cat([state_batch, action_batch], 1))
            q_prediction_list.append(q_prediction)
        q_prediction_cat = torch.cat(q_prediction_list, dim=1)
        y_q = y_q.expand((-1, self.num_Q)) if y_q.shape[1] == 1 else y_q
        return F.mse_loss(q_prediction_cat, y_q) * self.num_Q

    def redq_ave_q(self, critic, state_batch, a_tilda):
        """The ensemble's mean Q of the policy's actions, the critics frozen (REDQ thaws
        them after the policy's backward)."""
        q_a_tilda_list = []
        for sample_idx in range(self.num_Q):
            critic[sample_idx].requires_grad_(False)
            q_a_tilda = critic[sample_idx](torch.cat([state_batch, a_tilda], 1))
            q_a_tilda_list.append(q_a_tilda)
        q_a_tilda_cat = torch.cat(q_a_tilda_list, 1)
        return torch.mean(q_a_tilda_cat, dim=1, keepdim=True)

    def iteration(self, nets, optimizers, batch, forward):
        critic, critic_target, policy = nets["critic"], nets["critic_target"], nets["actor"]
        (log_alpha,) = nets["temperature"]
        critic_optim, policy_optim = optimizers["critic"], optimizers["actor"]
        alpha_optim = optimizers["temperature"]
        if self.alpha is None:
            self.alpha = log_alpha.exp()
        state_batch, action_batch = batch["state"], batch["action"]
        reward_batch, next_state_batch, mask_batch = (batch["reward"], batch["next_state"],
                                                      batch["mask"])
        record = Record()

        with forward():
            with torch.no_grad():
                next_state_action, next_state_log_pi, _ = policy.sample(next_state_batch,
                                                                        batch["next_noise"])
                if self.num_Q:
                    next_q_value = self.redq_target(
                        critic_target, next_state_batch, next_state_action, next_state_log_pi,
                        reward_batch, mask_batch, batch["in_target"].tolist())
                else:
                    qf1_next_target, qf2_next_target = critic_target(next_state_batch,
                                                                     next_state_action)
                    min_qf_next_target = (torch.min(qf1_next_target, qf2_next_target)
                                          - self.alpha * next_state_log_pi)
                    next_q_value = reward_batch + mask_batch * self.gamma * (min_qf_next_target)
            if self.num_Q:
                qf_loss = self.redq_q_loss(critic, state_batch, action_batch, next_q_value)
            else:
                qf1, qf2 = critic(state_batch, action_batch)
                qf1_loss = F.mse_loss(qf1, next_q_value)
                qf2_loss = F.mse_loss(qf2, next_q_value)
                qf_loss = qf1_loss + qf2_loss

        critic_optim.zero_grad()
        qf_loss.backward()
        self.record(record, qf_loss, nets, ["critic"])
        critic_optim.step()

        with forward():
            pi, log_pi, _ = policy.sample(state_batch, batch["noise"])
            if self.num_Q:
                policy_loss = (log_pi * self.alpha - self.redq_ave_q(critic, state_batch,
                                                                     pi)).mean()
            else:
                qf1_pi, qf2_pi = critic(state_batch, pi)
                min_qf_pi = torch.min(qf1_pi, qf2_pi)
                policy_loss = ((self.alpha * log_pi) - min_qf_pi).mean()

        policy_optim.zero_grad()
        policy_loss.backward()
        critic.requires_grad_(True)  # REDQ's thaw; pranz24 never froze them
        self.record(record, policy_loss, nets, ["actor"])
        policy_optim.step()

        with forward():
            alpha_loss = -(log_alpha * (log_pi + self.target_entropy).detach()).mean()

        alpha_optim.zero_grad()
        alpha_loss.backward()
        self.record(record, alpha_loss, nets, ["temperature"])
        alpha_optim.step()

        self.alpha = log_alpha.exp()
        soft_update(critic_target, critic, self.tau)  # updates % target_update_interval == 0
        return record


class Clip(Loop):
    """A CLIP-style dual encoder's step on openai/CLIP's loss: the model's forward gives
    ``logits_per_image`` and ``logits_per_text``, the loss is their symmetric cross-entropy
    against the diagonal, and one optimizer holds the whole model (the paper's AdamW: lr
    5e-4, betas 0.9/0.98, eps 1e-6, weight decay 0.2, here on every parameter as the
    harness has it; Adam the same without decay)."""

    sizes = ("tiny", "published")
    DIMS = {"tiny": {"image_resolution": 32, "vision_width": 4, "embed_dim": 16,
                     "vocab_size": 64, "context_length": 8, "transformer_width": 16,
                     "transformer_heads": 2, "transformer_layers": 2},
            "published": {"image_resolution": 224, "vision_width": 64, "embed_dim": 512,
                          "vocab_size": 49408, "context_length": 77, "transformer_width": 512,
                          "transformer_heads": 8, "transformer_layers": 12}}
    bitwise_only = ("the attention's key bias has a gradient zero but for rounding noise (a "
                    "softmax ignores what is added to all of a query's scores), which Adam "
                    "turns into full-size steps, and the batch-normed ResNet-18 drifts past "
                    "1e-4 of a tensor's norm within 5 steps")

    def networks(self, n_networks):
        d = self.DIMS[self.size]
        visual = resnet18(num_classes=d["embed_dim"], width=d["vision_width"])
        text = TextEncoder(d["embed_dim"], d["context_length"], d["vocab_size"],
                           d["transformer_width"], d["transformer_heads"],
                           d["transformer_layers"])
        return {"image": visual, "text": text}

    def optimizer(self, kind, params):
        if kind == "adam":
            return torch.optim.Adam(params, lr=5e-4, betas=(0.9, 0.98), eps=1e-6)
        if kind == "adamw":
            return torch.optim.AdamW(params, lr=5e-4, betas=(0.9, 0.98), eps=1e-6,
                                     weight_decay=0.2)
        return make_optimizer(kind, params)

    def optimizers(self, nets, kind):
        return {"model": self.optimizer(kind, itertools.chain(nets["image"].parameters(),
                                                              nets["text"].parameters()))}

    def batch(self, n, g):
        """Captions laid out as CLIP's ``tokenize`` lays them out (tokens, the end-of-text
        token, the vocabulary's largest id, then zeros), of random ids and lengths; then
        the images."""
        d = self.DIMS[self.size]
        context_length, eot_token = d["context_length"], d["vocab_size"] - 1
        words = torch.randint(1, eot_token, (n, context_length), generator=g)
        lengths = torch.randint(1, context_length, (n,), generator=g)
        result = torch.zeros(n, context_length, dtype=torch.long)
        for i, length in enumerate(lengths.tolist()):
            result[i, :length] = words[i, :length]
            result[i, length] = eot_token
        side = d["image_resolution"]
        return {"images": torch.randn(n, 3, side, side, generator=g), "tokens": result}

    def loss(self, nets, batch):
        image_features = nets["image"](batch["images"])  # encode_image
        text_features = nets["text"](batch["tokens"])  # encode_text
        # normalized features
        image_features = image_features / image_features.norm(dim=1, keepdim=True)
        text_features = text_features / text_features.norm(dim=1, keepdim=True)
        # cosine similarity as logits
        logit_scale = nets["text"].logit_scale.exp()
        logits_per_image = logit_scale * image_features @ text_features.t()
        logits_per_text = logits_per_image.t()
        labels = torch.arange(logits_per_image.shape[0], device=logits_per_image.device)
        return (F.cross_entropy(logits_per_image, labels)
                + F.cross_entropy(logits_per_text, labels)) / 2


class Distill(Loop):
    """The tutorial's train_knowledge_distillation (T=2, soft_target_loss_weight=0.25,
    ce_loss_weight=0.75, Adam at lr 0.001): the teacher in eval mode under no_grad, the
    student trained on both losses. The teacher is built first, as the tutorial trains it
    first."""

    sizes = ("tiny", "published")
    DIMS = {"tiny": (32, 4, 10), "published": (224, 64, 1000)}  # side, width, classes
    untrained = frozenset({"teacher"})
    T, soft_target_loss_weight, ce_loss_weight = 2, 0.25, 0.75
    bitwise_only = ("rounded otherwise (fused kernels on the CPU), the batch-normed ResNet-18 "
                    "student drifts past 1e-4 of a tensor's norm within 3 to 5 steps")

    def networks(self, n_networks):
        _, width, num_classes = self.DIMS[self.size]
        teacher = resnet50(num_classes, width)
        student = resnet18(num_classes, width)
        teacher.eval()  # Teacher set to evaluation mode
        student.train()  # Student to train mode
        return {"student": student, "teacher": teacher}

    def batch(self, n, g):
        side, _, num_classes = self.DIMS[self.size]
        inputs = torch.randn(n, 3, side, side, generator=g)
        return {"images": inputs, "labels": torch.randint(0, num_classes, (n,), generator=g)}

    def iteration(self, nets, optimizers, batch, forward):
        teacher, student = nets["teacher"], nets["student"]
        optimizer = optimizers["student"]
        ce_loss = nn.CrossEntropyLoss()
        inputs, labels = batch["images"], batch["labels"]
        T = self.T
        record = Record()

        optimizer.zero_grad()
        with forward():
            # Forward pass with the teacher model - do not save gradients here as we do not
            # change the teacher's weights
            with torch.no_grad():
                teacher_logits = teacher(inputs)
            # Forward pass with the student model
            student_logits = student(inputs)
            # Soften the student logits by applying softmax first and log() second
            soft_targets = nn.functional.softmax(teacher_logits / T, dim=-1)
            soft_prob = nn.functional.log_softmax(student_logits / T, dim=-1)
            # Calculate the soft targets loss. Scaled by T**2 as suggested by the authors of
            # the paper "Distilling the knowledge in a neural network"
            soft_targets_loss = (torch.sum(soft_targets * (soft_targets.log() - soft_prob))
                                 / soft_prob.size()[0] * (T**2))
            # Calculate the true label loss
            label_loss = ce_loss(student_logits, labels)
            # Weighted sum of the two losses
            loss = (self.soft_target_loss_weight * soft_targets_loss
                    + self.ce_loss_weight * label_loss)

        loss.backward()
        self.record(record, loss, nets, ["student"])
        optimizer.step()
        return record


WORKLOAD_LOOPS: dict[str, type[Loop]] = {
    "dcgan": Dcgan, "cyclegan": Cyclegan, "sac": Sac, "clip": Clip, "distill": Distill,
}
