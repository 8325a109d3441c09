"""template.yaml and the state machine definition as plain data, for tests that read them."""

import copy
import functools
import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


class Tagged(dict):
    """A CloudFormation short-form function (!Ref, !Sub, !GetAtt ...) as {tag: value}."""


class TemplateLoader(yaml.SafeLoader):
    pass


def _tagged(loader, tag_suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tagged({tag_suffix: value})


TemplateLoader.add_multi_constructor("!", _tagged)


@functools.cache
def _parsed_template(text: str) -> dict:
    return yaml.load(text, Loader=TemplateLoader)


def load_template() -> dict:
    """template.yaml as data: a copy of its one parse per content (every fake stack reads it; YAML is slow)."""
    return copy.deepcopy(_parsed_template((REPO / "template.yaml").read_text()))


def load_definition() -> dict:
    return json.loads((REPO / "statemachine" / "pipeline.asl.json").read_text())


def resources_of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {name: resource for name, resource in template["Resources"].items() if resource["Type"] == resource_type}


def main_path(definition: dict) -> list[str]:
    """The states a run passes through when nothing fails: StartAt, then each Next (a Choice's Default)."""
    path, name = [], definition["StartAt"]
    while name:
        path.append(name)
        state = definition["States"][name]
        name = state.get("Default") if state["Type"] == "Choice" else state.get("Next")
    return path


def all_states(states: dict) -> dict[str, dict]:
    """Every state, including those inside Parallel branches."""
    found = {}
    for name, state in states.items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(all_states(branch["States"]))
    return found
