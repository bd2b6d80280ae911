"""Field-level differences: precise paths, defaults and types respected, attempts watched."""

from __future__ import annotations

from ilab_gitops.runsrepo.fielddiff import (
    MISSING,
    FieldChange,
    decreased_attempts,
    dotted,
    field_changes,
    show_value,
)


def test_nested_leaf_is_named_by_its_full_path() -> None:
    old = {"spec": {"training": {"skills": {"learningRate": 6e-6, "epochs": 10}}}}
    new = {"spec": {"training": {"skills": {"learningRate": 1e-5, "epochs": 10}}}}
    assert field_changes(old, new) == [
        FieldChange(("spec", "training", "skills", "learningRate"), 6e-6, 1e-5)
    ]


def test_equal_values_give_no_change() -> None:
    value = {"a": [1, {"b": "x"}], "c": None}
    assert field_changes(value, value) == []


def test_lists_of_equal_length_compare_item_by_item() -> None:
    changes = field_changes({"prs": [1, 2, 3]}, {"prs": [1, 5, 3]})
    assert [c.dotted for c in changes] == ["prs[1]"]


def test_lists_of_different_length_are_one_change() -> None:
    assert field_changes({"prs": [1]}, {"prs": [1, 2]}) == [FieldChange(("prs",), [1], [1, 2])]


def test_added_and_removed_keys_use_missing() -> None:
    changes = field_changes({"a": 1}, {"b": 2})
    assert changes == [FieldChange(("a",), 1, MISSING), FieldChange(("b",), MISSING, 2)]


def test_a_change_of_type_is_a_change() -> None:
    assert field_changes({"x": 1}, {"x": 1.0}) == [FieldChange(("x",), 1, 1.0)]
    assert field_changes({"x": True}, {"x": 1}) == [FieldChange(("x",), True, 1)]


def test_dotted_paths_index_lists() -> None:
    assert dotted(("spec", "tolerations", 0, "key")) == "spec.tolerations[0].key"


def test_show_value_is_json_and_short() -> None:
    assert show_value("a") == '"a"'
    assert show_value(MISSING) == "(absent)"
    assert show_value(None) == "null"
    assert show_value("x" * 100).endswith("...")
    assert len(show_value("x" * 100)) == 60


def test_decreased_attempts_only_lowered_counters() -> None:
    changes = [
        FieldChange(("spec", "training", "skills", "attempt"), 2, 1),
        FieldChange(("spec", "output", "attempt"), 0, 3),
        FieldChange(("spec", "publish", "attempt"), 1, MISSING),
        FieldChange(("spec", "training", "skills", "epochs"), 10, 1),
    ]
    assert [c.dotted for c in decreased_attempts(changes)] == [
        "spec.training.skills.attempt",
        "spec.publish.attempt",
    ]
