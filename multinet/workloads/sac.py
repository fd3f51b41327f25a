"""Soft Actor-Critic with automatic entropy tuning, as pranz24/pytorch-soft-actor-critic
trains it (``sac.py``, ``model.py``; Haarnoja et al., 2018): its default options, with
``--automatic_entropy_tuning True`` (off by default there), since the temperature's own
optimizer is the point of this scenario.

Networks: twin Q critics in one module (``critic``, one Adam as in the reference), a Gaussian
policy squashed by tanh (``actor``), the entropy temperature ``log_alpha`` (``temperature``,
its own Adam), and target critics (``critic_target``) that no optimizer owns. All three Adams
take the reference's lr 3e-4. One iteration is the reference's ``update_parameters``: the
critics' update against the target critics, the actor's through the (frozen) critics, the
temperature's, then the target critics move towards the critics by Polyak averaging
(tau 0.005), timed as the ``target`` phase.

The temperature used is always ``exp(log_alpha)``, from the first update on (the reference
starts ``alpha`` at its ``--alpha`` 0.2 until the first temperature step). The policy's
reparameterisation noise is drawn with the batch (``noise``, ``next_noise``)
rather than inside ``rsample``, so every setup and the reference loop see the same numbers.
The published size is the reference's MuJoCo default: HalfCheetah's 17 observations and 6
actions, 256 hidden units, batch 256.

The sizes ``tiny-redq`` and ``published-redq`` make the critics an ensemble of ten, as REDQ
(Chen et al., 2021; watchernyu/REDQ's ``redq_sac.py``) has them: every critic is trained
towards one target, the minimum of two target critics drawn at random per batch (drawn with
the batch, ``in_target``), and the actor's loss takes the ensemble's mean where SAC takes its
twins' minimum. Two departures: every target critic is evaluated and the drawn two are taken,
where REDQ evaluates only those two (the same target, for eight more forwards without
gradients); and an iteration updates the critics once, where REDQ updates them twenty times
per actor update (its update-to-data ratio): here an iteration is one update of each network.
Under the ``stacked`` execution the Q functions of ``critic``, and those of
``critic_target``, run as one (``multinet/stacking.py``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from multinet.execution import Execution
from multinet.scenarios import Update, frozen, register
from multinet.workloads.base import Workload

GAMMA = 0.99
TAU = 0.005
LOG_STD_MIN, LOG_STD_MAX = -20, 2
EPSILON = 1e-6
# REDQ's ensemble (N = 10) and the number of its critics whose minimum is the target (M = 2)
REDQ_CRITICS, REDQ_IN_TARGET = 10, 2


@dataclass(frozen=True)
class SacSizes:
    observations: int = 17
    actions: int = 6
    hidden: int = 256
    critics: int = 2  # SAC's twin Q functions; REDQ's ensemble has ten


TINY = SacSizes(observations=5, actions=2, hidden=16)
SIZES = {"tiny": TINY, "published": SacSizes(),
         "tiny-redq": dataclasses.replace(TINY, critics=REDQ_CRITICS),
         "published-redq": SacSizes(critics=REDQ_CRITICS)}


def xavier(module: nn.Module) -> nn.Module:
    """The reference's ``weights_init_``: Xavier-uniform weights, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight, gain=1)
            nn.init.constant_(m.bias, 0)
    return module


class QFunction(nn.Module):
    """One Q function of (observation, action), concatenated: the reference's ``linear1``
    to ``linear3`` (the second's are its ``linear4`` to ``linear6``)."""

    def __init__(self, s: SacSizes):
        super().__init__()
        self.linear1 = nn.Linear(s.observations + s.actions, s.hidden)
        self.linear2 = nn.Linear(s.hidden, s.hidden)
        self.linear3 = nn.Linear(s.hidden, 1)

    def forward(self, x):
        return self.linear3(F.relu(self.linear2(F.relu(self.linear1(x)))))


class QNetwork(nn.Module):
    """The critics: the reference's ``QNetwork`` (two Q functions, built and initialised in
    its order) or an ensemble of more. Each Q function runs through ``execution``, which a
    step may set (streams); a stack of them (``multinet/stacking.py``) is found in ``q``."""

    execution: Execution = Execution()

    def __init__(self, s: SacSizes):
        super().__init__()
        self.names = self.names_for(s)
        if s.critics == 2:  # pranz24's QNetwork: both built, then initialised
            self.q = nn.ModuleDict({name: QFunction(s) for name in self.names})
            xavier(self)
        else:  # REDQ's critics, each an ``Mlp`` initialised as it is built
            self.q = nn.ModuleDict({name: xavier(QFunction(s)) for name in self.names})

    @staticmethod
    def names_for(s: SacSizes) -> tuple[str, ...]:
        return tuple(f"q{i}" for i in range(1, s.critics + 1))

    def forward(self, state, action) -> list[torch.Tensor]:
        return self.execution.members(self.q, self.names, torch.cat([state, action], 1))


class GaussianPolicy(nn.Module):
    def __init__(self, s: SacSizes):
        super().__init__()
        self.linear1 = nn.Linear(s.observations, s.hidden)
        self.linear2 = nn.Linear(s.hidden, s.hidden)
        self.mean_linear = nn.Linear(s.hidden, s.actions)
        self.log_std_linear = nn.Linear(s.hidden, s.actions)
        xavier(self)

    def forward(self, state: torch.Tensor, noise: torch.Tensor):
        """An action and its log-probability; ``noise`` is the standard normal draw that
        ``Normal.rsample`` would make. The reference's ``sample``, called as the module
        itself, so that module hooks (the per-network attribution) see the actor."""
        x = F.relu(self.linear2(F.relu(self.linear1(state))))
        mean = self.mean_linear(x)
        log_std = self.log_std_linear(x).clamp(min=LOG_STD_MIN, max=LOG_STD_MAX)
        std = log_std.exp()
        x_t = mean + std * noise
        y_t = torch.tanh(x_t)
        # Normal(mean, std).log_prob(x_t) as torch.distributions computes it, then the tanh's change of variables
        log_prob = (-((x_t - mean) ** 2) / (2 * std ** 2) - std.log()
                    - math.log(math.sqrt(2 * math.pi)))
        log_prob = log_prob - torch.log(1 - y_t.pow(2) + EPSILON)
        return y_t, log_prob.sum(1, keepdim=True)


class Temperature(nn.Module):
    """The entropy temperature as a module: log(alpha), starting at 0 as the reference's."""

    def __init__(self):
        super().__init__()
        self.log_alpha = nn.Parameter(torch.zeros(1))


@register
class Sac(Workload):
    SIZES = SIZES
    name = "sac"
    description = ("Soft Actor-Critic: twin critics, actor, temperature (three Adams), then "
                   "target critics by Polyak averaging")
    several_updates = True
    untrained = frozenset({"critic_target"})
    has_target_update = True
    expected_flow = {"loss_critic": frozenset({"critic"}), "loss_actor": frozenset({"actor"}),
                     "loss_temperature": frozenset({"temperature"})}
    optimizer_overrides: ClassVar = {"adam": {"lr": 3e-4}, "adamw": {"lr": 3e-4}}

    def __init__(self, sizes: SacSizes, n_networks: int = 2):
        super().__init__(sizes, n_networks)
        self.target_entropy = -float(sizes.actions)  # the reference's -|A|

    def build_networks(self):
        critic = QNetwork(self.dims)
        critic_target = QNetwork(self.dims)
        critic_target.load_state_dict(critic.state_dict())  # the reference's hard_update
        critic_target.requires_grad_(False)
        return {"critic": critic, "actor": GaussianPolicy(self.dims),
                "temperature": Temperature(), "critic_target": critic_target}

    def make_batch(self, batch_size, generator):
        s = self.dims
        n, a = batch_size, s.actions

        def randn(*shape):
            return torch.randn(*shape, generator=generator)
        batch = {"state": randn(n, s.observations),
                 "action": torch.rand(n, a, generator=generator) * 2 - 1, "reward": randn(n, 1),
                 "next_state": randn(n, s.observations),
                 "mask": (torch.rand(n, 1, generator=generator) > 0.01).float(),  # 1 - done
                 "noise": randn(n, a), "next_noise": randn(n, a)}
        if s.critics > REDQ_IN_TARGET:  # REDQ's draw of the critics the target takes
            batch["in_target"] = torch.randperm(s.critics, generator=generator)[:REDQ_IN_TARGET]
        return batch

    @staticmethod
    def _alpha(networks) -> torch.Tensor:
        return networks["temperature"].log_alpha.exp().detach()

    def _critic_loss(self, networks, batch, scratch):
        alpha = self._alpha(networks)
        with torch.no_grad():
            next_action, next_log_pi = networks["actor"](batch["next_state"],
                                                         batch["next_noise"])
            min_q_next = self._target_min(
                networks["critic_target"](batch["next_state"], next_action), batch)
            next_q = batch["reward"] + batch["mask"] * GAMMA * (min_q_next - alpha * next_log_pi)
        qs = networks["critic"](batch["state"], batch["action"])
        if len(qs) == 2:
            return F.mse_loss(qs[0], next_q) + F.mse_loss(qs[1], next_q)
        # REDQ's: one mean over every critic's errors, times the number of critics
        return F.mse_loss(torch.cat(qs, 1), next_q.expand(-1, len(qs))) * len(qs)

    @staticmethod
    def _target_min(q_next: list[torch.Tensor], batch) -> torch.Tensor:
        """SAC's minimum of its twin target critics, or REDQ's of the two drawn."""
        if len(q_next) == 2:
            return torch.min(*q_next)
        drawn = torch.cat(q_next, 1).index_select(1, batch["in_target"])
        return drawn.min(dim=1, keepdim=True).values

    def _actor_loss(self, networks, batch, scratch):
        pi, log_pi = networks["actor"](batch["state"], batch["noise"])
        scratch["log_pi"] = log_pi
        qs = networks["critic"](batch["state"], pi)
        # SAC's minimum of its twin critics; REDQ's mean over its ensemble
        q_pi = torch.min(*qs) if len(qs) == 2 else torch.cat(qs, 1).mean(dim=1, keepdim=True)
        return ((self._alpha(networks) * log_pi) - q_pi).mean()

    def independent(self):
        names = QNetwork.names_for(self.dims)
        return (("critic.q", names), ("critic_target.q", names))

    def stackable(self):
        return self.independent()

    def use(self, execution, networks):
        super().use(execution, networks)
        networks["critic"].execution = networks["critic_target"].execution = execution

    def _temperature_loss(self, networks, batch, scratch):
        log_pi = scratch.pop("log_pi").detach()
        return -(networks["temperature"].log_alpha * (log_pi + self.target_entropy)).mean()

    def loss_terms(self, networks, batch):
        scratch: dict = {}
        critic = self._critic_loss(networks, batch, scratch)
        with frozen([networks["critic"]]):
            actor = self._actor_loss(networks, batch, scratch)
        return {"loss_critic": critic, "loss_actor": actor,
                "loss_temperature": self._temperature_loss(networks, batch, scratch)}

    def updates(self):
        return [Update(self._critic_loss, trains=frozenset({"critic"})),
                Update(self._actor_loss, trains=frozenset({"actor"}),
                       frozen=frozenset({"critic"})),
                Update(self._temperature_loss, trains=frozenset({"temperature"}))]

    def target_update(self, networks):
        """target <- target (1 - tau) + critic tau, the reference's ``soft_update``, as one
        multi-tensor operation per step (each a kernel over every tensor on CUDA)."""
        with torch.no_grad():
            targets = list(networks["critic_target"].parameters())
            moved = torch._foreach_mul(list(networks["critic"].parameters()), TAU)
            torch._foreach_mul_(targets, 1.0 - TAU)
            torch._foreach_add_(targets, moved)
