"""routergen's bandit loop against datacore's conformance suite (the sequential variant).

The loop is built as ``run_recipe`` builds it (offline: grammar arms and offline validators),
without a fixed output directory: it writes its history beside the dataset datacore opened.
"""

from __future__ import annotations

import pytest
from datacore.testing import check_generator
from routergen.pipeline import default_max_iterations, usable_arms
from routergen.recipe_loop import RecipeLoop
from routergen.spec import GenerationContext, load_recipe

# Several whole runs, kills and resumes: run in the combined test session, not in each isolated one.
pytestmark = pytest.mark.slow

N, SEED = 60, 7


def _loop(path) -> RecipeLoop:
    recipe = load_recipe(path)
    arms = [a for a, ok, _ in usable_arms(recipe, GenerationContext.from_recipe(recipe, offline=True)) if ok]
    config = {"recipe": recipe.data, "recipe_hash": recipe.hash, "n": N, "offline": True, "arms": [a.name for a in arms]}
    return RecipeLoop(
        recipe,
        config,
        None,
        n=N,
        seed=SEED,
        arms=arms,
        make_backend=lambda: None,
        max_iterations=default_max_iterations(N, recipe.batch_size),
    )


@pytest.mark.parametrize("round_size", [1, 2])
def test_routergen_loop_conforms(tmp_path, small_recipe_path, round_size) -> None:
    # round_size 2: kills land inside rounds, whose resume decides from the state the round began with.
    path = small_recipe_path
    if round_size != 1:
        path.write_text(path.read_text().replace("router: {", f"router: {{round_size: {round_size}, "))
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("batch_size: 20", "batch_size: -3"))
    times = check_generator(
        lambda: _loop(path), n=N, seed=SEED, ray=False, kills=1, bad_configs=[lambda: _loop(bad)], workdir=tmp_path
    )
    assert {"determinism", "count/ids/splits", "encoding", "kill", "failure", "bad_config"} <= set(times), times
