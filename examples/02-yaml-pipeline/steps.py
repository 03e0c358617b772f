"""The science of the YAML pipeline example: a tilted double well, scanned coarsely and refined locally."""

from __future__ import annotations


def energy(x: float, tilt: float) -> dict[str, float]:
    """A cheap stand-in for a simulation: the energy of a tilted double well at x."""
    return {"x": x, "tilt": tilt, "energy": (x * x - 1.0) ** 2 + tilt * x}


def summarise(inputs: list[dict[str, float]]) -> dict[str, float]:
    """The scan in one line: how many points and the lowest energy seen."""
    best = min(inputs, key=lambda r: r["energy"])
    return {"points": len(inputs), "best_x": best["x"], "best_energy": best["energy"]}


def refine(x0: float, tilt: float, steps: int = 200, rate: float = 0.02) -> dict[str, float]:
    """Gradient descent from a promising scan point to the bottom of its well."""
    x = x0
    for _ in range(steps):
        x -= rate * (4.0 * x * (x * x - 1.0) + tilt)
    return {"x0": x0, "x": x, "tilt": tilt, "energy": (x * x - 1.0) ** 2 + tilt * x}
