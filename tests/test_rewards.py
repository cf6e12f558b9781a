import pytest
from datasets import Dataset

from hintgrpo.data.loaders import load_task_dataset
from hintgrpo.reasoning import render
from hintgrpo.rewards import REWARDS, completion_text, fit_reward_scales, get_reward_funcs

GOOD = render("negative", "complaint", "mild", -1.4)
WRONG_POLARITY = render("positive", "praise", "strong", 2.5)
INCONSISTENT = render("positive", "praise", "but the score says otherwise", -2.0)
NO_ANSWER = "I cannot judge this."


def rewards(name, completions, **columns):
    (func,) = get_reward_funcs([name])
    n = len(completions)
    columns = {"task": ["emobank"] * n, "label": [-1.5] * n, "polarity": ["negative"] * n} | columns
    return func(completions=completions, **columns)


def test_format_reward():
    assert rewards("format", [GOOD, WRONG_POLARITY, NO_ANSWER, GOOD.replace("-1.4", "9")]) == [1.0, 1.0, 0.0, 0.0]


def test_polarity_reward_reads_gold_polarity_column():
    assert rewards("polarity", [GOOD, WRONG_POLARITY, NO_ANSWER]) == [1.0, 0.0, 0.0]
    assert rewards("polarity", [GOOD], polarity=["positive"]) == [0.0]


def test_regression_reward_default_tau_is_quarter_range():
    # tau = 6 / 4 = 1.5: |-1.4 + 1.5| = 0.1 -> 1 - 0.1/1.5; |2.5 + 1.5| = 4 -> 0; no answer -> 0.
    assert rewards("regression", [GOOD, WRONG_POLARITY, NO_ANSWER]) == pytest.approx([1 - 0.1 / 1.5, 0.0, 0.0])


def test_regression_tau_is_configurable():
    (func,) = get_reward_funcs(["regression"], regression_tau=0.2)
    assert func([GOOD], task=["emobank"], label=[-1.5]) == pytest.approx([0.5])


def test_regression_tau_follows_the_training_label_spread():
    train = Dataset.from_list(
        [{"task": "emobank", "label": label} for label in (-0.5, 0.5)] + [{"task": "meld_sentiment", "label": 0.0}]
    )
    format_func, regression, given_tau = get_reward_funcs(["format", "regression"]) + get_reward_funcs(
        ["regression"], regression_tau=0.2
    )
    fit_reward_scales([format_func, regression, given_tau], train)
    # Label std 0.5, tau = 1.5 std = 0.75: |-1.4 + 1.5| = 0.1 -> 1 - 0.1 / 0.75. A given tau wins.
    assert regression([GOOD], task=["emobank"], label=[-1.5]) == pytest.approx([1 - 0.1 / 0.75])
    assert given_tau([GOOD], task=["emobank"], label=[-1.5]) == pytest.approx([0.5])
    assert regression.__name__ == "regression_reward"  # TRL names the reward's metrics by it


def test_a_constant_answer_earns_little_on_emobank(real_data_dir):
    """EmoBank labels cluster near 0: a tau of the score range pays always answering 0 most of the reward."""
    train = load_task_dataset("emobank", real_data_dir, "train")
    labels = train["label"]
    zero = render("neutral", "e", "c", 0.0)
    (range_tau,) = get_reward_funcs(["regression"])
    (spread_tau,) = get_reward_funcs(["regression"])
    fit_reward_scales([spread_tau], train)
    columns = {"completions": [zero] * len(labels), "task": train["task"], "label": labels}
    assert sum(range_tau(**columns)) / len(labels) == pytest.approx(0.763, abs=1e-3)
    assert sum(spread_tau(**columns)) / len(labels) == pytest.approx(0.604, abs=1e-3)


def test_consistency_reward():
    assert rewards("consistency", [GOOD, INCONSISTENT, NO_ANSWER]) == [1.0, 0.0, 0.0]


def test_consistency_of_surprise_is_judged_by_the_row_polarity():
    # MELD's surprise is positive or negative by row, never the fixed map's neutral.
    completions = [
        render(p, "e", "c", a) for p, a in [("positive", "surprise"), ("positive", "joy"), ("neutral", "surprise")]
    ]
    columns = {"task": ["meld_emotion"] * 3, "label": ["surprise"] * 3}
    assert rewards("consistency", completions, **columns, polarity=["positive"] * 3) == [1.0, 1.0, 0.0]
    assert rewards("consistency", completions, **columns, polarity=["negative"] * 3) == [0.0, 1.0, 0.0]


def test_task_specific_rewards_return_none_elsewhere():
    completions = [GOOD, render("negative", "e", "c", "negative")]
    columns = {"task": ["emobank", "meld_sentiment"], "label": [-1.5, "negative"], "polarity": ["negative"] * 2}
    assert rewards("accuracy", completions, **columns) == [None, 1.0]
    assert rewards("regression", completions, **columns)[1] is None


def test_conversational_completions():
    conversational = [[{"role": "assistant", "content": GOOD}]]
    assert completion_text(conversational[0]) == GOOD
    assert rewards("format", conversational) == [1.0]


def test_unknown_reward_name():
    with pytest.raises(ValueError, match="available: format"):
        get_reward_funcs(["format", "fluency"])


def test_registry_names():
    assert set(REWARDS) == {"format", "polarity", "regression", "consistency", "accuracy"}


def test_rewards_plug_into_trl_grpo(tiny_model_dir, tmp_path):
    """TRL calls our rewards with the dataset's gold columns and logs each one."""
    from trl import GRPOConfig, GRPOTrainer

    from hintgrpo.data.prompts import add_prompt

    rows = [{"id": str(i), "text": f"sample {i}", "label": 1.5 - i, "task": "emobank", "context": ""} for i in range(4)]
    dataset = Dataset.from_list([r | {"polarity": "positive" if r["label"] > 0.5 else "neutral"} for r in rows])
    config = GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        max_steps=1,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
    )
    names = ["format", "polarity", "regression", "consistency"]
    trainer = GRPOTrainer(
        model=str(tiny_model_dir),
        reward_funcs=get_reward_funcs(names),
        args=config,
        train_dataset=dataset.map(add_prompt),
    )
    trainer.train()
    logged = trainer.state.log_history[0]
    for name in names:
        assert f"rewards/{name}_reward/mean" in logged
