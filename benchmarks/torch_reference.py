"""The authors' PyTorch SAC/TD3 update, re-written to mirror their code for side-by-side timing.

Mirrors the authors' code (github.com/keynans/HypeRL, SAC/ and TD3/; docs/authors_code.md): the hypernetwork critic
(primary ResNet `Meta_Embadding`, one `Head` of three Linear maps per dynamic layer, `bmm`
dynamic network with W as [B, out, in]), twin critics as two independent networks, xavier MLPs,
Adam, and their per-step structure: a Python-level `update()` called once per env step that
samples its batch from a Python replay list (`random.sample`), stacks it with numpy, runs the
critic step, the actor step with the critic frozen, and a Python loop of soft updates.

Only for benchmarks (`pip install torch==2.13.0`; torch is an optional extra). Not imported by
the library.
"""

import contextlib
import copy
import math
import random

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

LATENT = 1024
# The authors' scripts put everything on CUDA when there is one; so does this reference.
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _uniform_(weight, bound):
    nn.init.uniform_(weight, -bound, bound)


class ResBlock(nn.Module):
    def __init__(self, n, bound_fn):
        super().__init__()
        self.l1, self.l2 = nn.Linear(n, n), nn.Linear(n, n)
        for layer in (self.l1, self.l2):
            _uniform_(layer.weight, bound_fn(n))

    def forward(self, x):
        return x + self.l2(F.relu(self.l1(F.relu(x))))


class MetaEmbedding(nn.Module):
    """The primary network: meta -> 1024 (weights re-initialised, biases PyTorch default)."""

    def __init__(self, meta_dim, variant="sac"):
        super().__init__()

        def bound(fan_in):
            return 1 / math.sqrt(2 * fan_in) if variant == "sac" else 1 / (2 * math.sqrt(fan_in))

        layers, fan_in = [], meta_dim
        for width in (256, 512, LATENT):
            proj = nn.Linear(fan_in, width)
            _uniform_(proj.weight, bound(fan_in))
            layers += [proj, ResBlock(width, bound), ResBlock(width, bound)]
            fan_in = width
        self.net = nn.Sequential(*layers)

    def forward(self, meta):
        return self.net(meta)


class Head(nn.Module):
    def __init__(self, in_size, out_size, sttdev):
        super().__init__()
        self.in_size, self.out_size = in_size, out_size
        self.W1, self.b1, self.s1 = (
            nn.Linear(LATENT, in_size * out_size),
            nn.Linear(LATENT, out_size),
            nn.Linear(LATENT, out_size),
        )
        for layer in (self.W1, self.b1, self.s1):
            _uniform_(layer.weight, sttdev)
            nn.init.zeros_(layer.bias)

    def forward(self, z):
        w = self.W1(z).view(-1, self.out_size, self.in_size)
        b = self.b1(z).view(-1, self.out_size, 1)
        s = 1.0 + self.s1(z).view(-1, self.out_size, 1)
        return w, b, s


class HyperQ(nn.Module):
    """SA-Hyper Q: z = primary(state); dynamic net on the action, one hidden layer of 256."""

    def __init__(self, obs_dim, act_dim, variant="sac"):
        super().__init__()
        self.embedding = MetaEmbedding(obs_dim, variant)
        self.hidden, self.last = Head(act_dim, 256, 0.05), Head(256, 1, 0.008)

    def forward(self, state, action):
        z = self.embedding(state)
        w1, b1, s1 = self.hidden(z)
        w2, b2, s2 = self.last(z)
        h = F.relu(torch.bmm(w1, action.unsqueeze(2)) * s1 + b1)
        return (torch.bmm(w2, h) * s2 + b2).view(-1, 1)


def _xavier(module):
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


class MLPQ(nn.Module):
    def __init__(self, obs_dim, act_dim, hidden=256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(obs_dim + act_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )
        self.apply(_xavier)

    def forward(self, state, action):
        return self.net(torch.cat([state, action], 1))


class Critic(nn.Module):
    """Twin critics: two fully independent networks."""

    def __init__(self, kind, obs_dim, act_dim, variant="sac"):
        super().__init__()
        make = (lambda: HyperQ(obs_dim, act_dim, variant)) if kind == "sa_hyper" else (lambda: MLPQ(obs_dim, act_dim))
        self.q1, self.q2 = make(), make()

    def forward(self, state, action):
        return self.q1(state, action), self.q2(state, action)


class GaussianPolicy(nn.Module):
    def __init__(self, obs_dim, act_dim, hidden=256):
        super().__init__()
        self.l1, self.l2 = nn.Linear(obs_dim, hidden), nn.Linear(hidden, hidden)
        self.mean, self.log_std = nn.Linear(hidden, act_dim), nn.Linear(hidden, act_dim)
        self.apply(_xavier)

    def sample(self, state):
        h = F.relu(self.l2(F.relu(self.l1(state))))
        mean, log_std = self.mean(h), self.log_std(h).clamp(-20, 2)
        normal = torch.distributions.Normal(mean, log_std.exp())
        x = normal.rsample()
        log_prob = normal.log_prob(x) - 2 * (math.log(2) - x - F.softplus(-2 * x))
        return torch.tanh(x), log_prob.sum(1, keepdim=True)


class DeterministicPolicy(nn.Module):
    def __init__(self, obs_dim, act_dim, hidden=256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, act_dim)
        )

    def forward(self, state):
        return torch.tanh(self.net(state))


@contextlib.contextmanager
def _frozen(module):
    """The authors' pattern: critic params stop requiring grad during the actor backward."""
    for p in module.parameters():
        p.requires_grad = False
    try:
        yield
    finally:
        for p in module.parameters():
            p.requires_grad = True


def _soft_update(target, source, tau):
    for t, s in zip(target.parameters(), source.parameters()):
        t.data.copy_(tau * s.data + (1.0 - tau) * t.data)


def _batch(replay, batch_size):
    """The authors' sampling: random.sample from a Python list, then numpy stacking."""
    batch = random.sample(replay, batch_size)
    state, action, reward, next_state, mask = map(np.stack, zip(*batch))
    as_tensor = lambda x: torch.as_tensor(x, dtype=torch.float32, device=DEVICE)  # noqa: E731
    return (
        as_tensor(state),
        as_tensor(action),
        as_tensor(reward).unsqueeze(1),
        as_tensor(next_state),
        as_tensor(mask).unsqueeze(1),
    )


class SAC:
    """The authors' SAC update (SAC/models/soft_actor_critic.py), fixed alpha."""

    def __init__(self, kind, obs_dim, act_dim, batch_size=256, alpha=0.2, gamma=0.99, tau=0.005):
        self.critic = Critic(kind, obs_dim, act_dim).to(DEVICE)
        self.critic_target = copy.deepcopy(self.critic)
        self.policy = GaussianPolicy(obs_dim, act_dim).to(DEVICE)
        critic_lr = 5e-5 if kind == "sa_hyper" else 3e-4
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=critic_lr)
        self.policy_opt = torch.optim.Adam(self.policy.parameters(), lr=3e-4)
        self.batch_size, self.alpha, self.gamma, self.tau = batch_size, alpha, gamma, tau

    def update(self, replay):
        state, action, reward, next_state, mask = _batch(replay, self.batch_size)
        with torch.no_grad():
            next_action, next_log_prob = self.policy.sample(next_state)
            q1_next, q2_next = self.critic_target(next_state, next_action)
            target = reward + self.gamma * mask * (torch.min(q1_next, q2_next) - self.alpha * next_log_prob)
        q1, q2 = self.critic(state, action)
        critic_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()

        with _frozen(self.critic):
            new_action, log_prob = self.policy.sample(state)
            q1_pi, q2_pi = self.critic(state, new_action)
            policy_loss = (self.alpha * log_prob - torch.min(q1_pi, q2_pi)).mean()
            self.policy_opt.zero_grad()
            policy_loss.backward()
            self.policy_opt.step()

        _soft_update(self.critic_target, self.critic, self.tau)
        return critic_loss.item(), policy_loss.item()


class TD3:
    """The authors' TD3 update (TD3/TD3.py); `update` is one call of their `train` iteration."""

    def __init__(self, kind, obs_dim, act_dim, batch_size=100, gamma=0.99, tau=0.005, policy_delay=2):
        self.critic = Critic(kind, obs_dim, act_dim, variant="td3").to(DEVICE)
        self.critic_target = copy.deepcopy(self.critic)
        self.actor = DeterministicPolicy(obs_dim, act_dim).to(DEVICE)
        self.actor_target = copy.deepcopy(self.actor)
        critic_lr = 5e-5 if kind == "sa_hyper" else 3e-4
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=critic_lr)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=3e-4)
        self.batch_size, self.gamma, self.tau, self.policy_delay = batch_size, gamma, tau, policy_delay
        self.total_it = 0

    def update(self, replay):
        self.total_it += 1
        state, action, reward, next_state, mask = _batch(replay, self.batch_size)
        with torch.no_grad():
            noise = (torch.randn_like(action) * 0.2).clamp(-0.5, 0.5)
            next_action = (self.actor_target(next_state) + noise).clamp(-1, 1)
            q1_next, q2_next = self.critic_target(next_state, next_action)
            target = reward + self.gamma * mask * torch.min(q1_next, q2_next)
        q1, q2 = self.critic(state, action)
        critic_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()
        if self.total_it % self.policy_delay == 0:
            with _frozen(self.critic):
                actor_loss = -self.critic.q1(state, self.actor(state)).mean()
                self.actor_opt.zero_grad()
                actor_loss.backward()
                self.actor_opt.step()
            _soft_update(self.critic_target, self.critic, self.tau)
            _soft_update(self.actor_target, self.actor, self.tau)
        return critic_loss.item()


def random_replay(obs_dim, act_dim, size=10_000, seed=0):
    """A Python list of (s, a, r, s', mask) tuples, as the authors' deque holds."""
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(size=obs_dim), rng.uniform(-1, 1, act_dim), rng.normal(), rng.normal(size=obs_dim), 1.0)
        for _ in range(size)
    ]


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
