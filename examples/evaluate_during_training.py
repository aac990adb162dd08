"""Evaluate a torch.nn.Module from inside a training loop (README: "Evaluating during training").

Trains nothing: it evaluates the same small network at three "steps", as a training script
would every few thousand steps. Run it from the repository root:

    MUJOCO_GL=egl python examples/evaluate_during_training.py

Each call writes its own run folder under results/training/ (readable by `evalharness
table` and `report`); the envs are built on the first call only.
"""

import torch

import evalharness

model = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 7), torch.nn.Tanh())


def act(observation):  # the harness observation -> a (1, 7) chunk of LIBERO actions
    state = torch.as_tensor(observation["state"], dtype=torch.float32)
    with torch.no_grad():
        return model(state).double().numpy()[None]


policy = evalharness.CallablePolicy(act, name="tiny-mlp", cameras=())  # reads the state, no camera
with evalharness.Evaluator("results/training", suite="libero_object", tasks=[0, 1], episodes=2,
                           max_steps=50, camera_size=64, video="none", env_capacity=2, quiet=True) as ev:
    for step in (1000, 2000, 3000):
        # ... train for a few thousand steps here ...
        summary = ev.run(policy, label=f"step{step}", step=step, weights_digest=evalharness.weights_digest(model))
        print(f"step {step}: success {summary.metrics()['eval/total/rate']}, env builds so far {ev.env_builds}")
