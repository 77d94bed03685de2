#!/usr/bin/env python3
"""Validates examples/*.yaml against the CRD schemas in crds/runnel.dev.yaml.

Each document is checked against the openAPIV3Schema of its kind, turned
into JSON Schema the way the API server reads it:

- `nullable: true` admits null;
- `x-kubernetes-int-or-string: true` admits an integer or a string;
- objects with `properties` and no `additionalProperties` reject unknown
  fields (the API server would prune them silently, or refuse them with
  `kubectl apply`'s default strict field validation: a typo must fail here);
- formats int32, int64 and date-time are checked.

The examples must also refer to each other: topics and groups name the
example Cluster, groups name example Topics. Then it proves the validator
can fail: broken resources, built here from the examples, must each be
rejected at the field that is wrong, and a few valid edge cases (including
the commented offsetReset of consumer-group.yaml) must pass.

Usage: validate_examples.py [--documents-only] CRDS_YAML EXAMPLES_DIR
(--documents-only: the documents and their references, not the proof that
the validator can fail). Prints one line per check; exits 1 on any failure.
"""

import copy
import datetime
import glob
import os
import sys

import jsonschema
import yaml

from check_report import FAILURES, fail, ok


def to_json_schema(node):
    """The JSON Schema equivalent of one Kubernetes structural schema node."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("description", "default", "example", "nullable"):
            continue
        if key.startswith("x-kubernetes-"):
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = to_json_schema(value)
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if node.get("nullable"):
        # Keywords other than type and enum ignore values of other types.
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = out["enum"] + [None]
        else:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


# What the API server checks of every object besides its schema.
ROOT_FIELDS = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {
        "type": "object",
        "required": ["name"],
        "properties": {
            # A DNS-1123 subdomain, as for any object.
            "name": {
                "type": "string",
                "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                "maxLength": 253,
            },
            "namespace": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "additionalProperties": False,
    },
}


def load_schemas(crds_path):
    """{(apiVersion, kind): JSON Schema} for every served version."""
    schemas = {}
    with open(crds_path) as f:
        for crd in yaml.safe_load_all(f):
            if not crd:
                continue
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", True):
                    continue
                schema = to_json_schema(version["schema"]["openAPIV3Schema"])
                schema["properties"] = {**ROOT_FIELDS, **schema.get("properties", {})}
                schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
                if kind == "Cluster":
                    # A Cluster's name becomes its StatefulSet's and Services'
                    # names: a DNS-1035 label, and at most 52 characters, as
                    # StatefulSet names must be (their pods' hash label).
                    schema["properties"]["metadata"] = copy.deepcopy(ROOT_FIELDS["metadata"])
                    schema["properties"]["metadata"]["properties"]["name"] = {
                        "type": "string",
                        "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$",
                        "maxLength": 52,
                    }
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("int32")
def _int32(value):
    return not isinstance(value, int) or -(2**31) <= value < 2**31


@FORMATS.checks("int64")
def _int64(value):
    return not isinstance(value, int) or -(2**63) <= value < 2**63


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value):
    if isinstance(value, str):
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def errors_of(schemas, document):
    """The validation errors of one document as (field path, message), empty
    when it is valid."""
    if not isinstance(document, dict):
        return [("(root)", "not a mapping")]
    key = (document.get("apiVersion"), document.get("kind"))
    schema = schemas.get(key)
    if schema is None:
        # An unknown kind is an error, never a skip.
        return [("kind", f"no CRD schema for {key[1]} {key[0]}")]
    validator = jsonschema.Draft7Validator(schema, format_checker=FORMATS)
    return [
        (".".join(str(p) for p in error.absolute_path) or "(root)", error.message)
        for error in sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    ]


def describe(errors):
    return "; ".join(f"{path}: {message}" for path, message in errors)


def with_change(document, path, value=None, delete=False):
    """A copy of document with the field at path (dotted) set or deleted."""
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = changed
    for part in parents:
        node = node.setdefault(part, {})
    if delete:
        node.pop(last, None)
    else:
        node[last] = value
    return changed


def uncommented_offset_reset(path):
    """consumer-group.yaml with its commented `offsetReset` example enabled."""
    lines = open(path).read().splitlines()
    out, inside = [], False
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith("# offsetReset:"):
            inside = True
        if inside and stripped.startswith("#"):
            indent = line[: len(line) - len(stripped)]
            out.append(indent + stripped[2:] if stripped.startswith("# ") else indent)
            continue
        inside = False
        out.append(line)
    document = yaml.safe_load("\n".join(out))
    return document if document and "offsetReset" in document.get("spec", {}) else None


def main():
    args = sys.argv[1:]
    documents_only = "--documents-only" in args
    args = [a for a in args if a != "--documents-only"]
    if len(args) != 2:
        sys.exit(__doc__)
    crds_path, examples_dir = args
    schemas = load_schemas(crds_path)
    expected_kinds = {"Cluster", "Topic", "ConsumerGroup"}
    loaded_kinds = {kind for _, kind in schemas}
    if loaded_kinds == expected_kinds:
        ok(f"CRD schemas loaded from {crds_path}: {', '.join(sorted(loaded_kinds))}")
    else:
        fail(f"CRD kinds in {crds_path} are {sorted(loaded_kinds)}, expected {sorted(expected_kinds)}")

    # The examples themselves.
    examples = {}
    paths = sorted(glob.glob(os.path.join(examples_dir, "*.yaml")))
    if not paths:
        fail(f"no examples in {examples_dir}")
    for path in paths:
        with open(path) as f:
            documents = [d for d in yaml.safe_load_all(f) if d is not None]
        if not documents:
            fail(f"{path}: no document")
        shown = os.path.join(os.path.basename(os.path.normpath(examples_dir)), os.path.basename(path))
        for document in documents:
            name = f"{shown}: {document.get('kind')}/{document.get('metadata', {}).get('name')}"
            errors = errors_of(schemas, document)
            if errors:
                fail(f"{name} does not match its CRD schema: {describe(errors)}")
            else:
                ok(f"{name} matches its CRD schema")
                examples.setdefault(document["kind"], []).append(document)
    missing = expected_kinds - set(examples)
    if missing:
        fail(f"no valid example of {', '.join(sorted(missing))}")
    else:
        ok("every kind has a valid example")

    # They refer to each other.
    clusters = {d["metadata"]["name"] for d in examples.get("Cluster", [])}
    topics = {d["spec"].get("topicName") or d["metadata"]["name"] for d in examples.get("Topic", [])}
    for document in examples.get("Topic", []) + examples.get("ConsumerGroup", []):
        name = f"{document['kind']}/{document['metadata']['name']}"
        if document["spec"]["cluster"] in clusters:
            ok(f"{name} names the example Cluster {document['spec']['cluster']}")
        else:
            fail(f"{name} names Cluster {document['spec']['cluster']}, not one of the examples {sorted(clusters)}")
    for document in examples.get("ConsumerGroup", []):
        unknown = set(document["spec"]["topics"]) - topics
        if unknown:
            fail(f"ConsumerGroup/{document['metadata']['name']} names topics {sorted(unknown)} no example Topic makes")
        else:
            ok(f"ConsumerGroup/{document['metadata']['name']} names example Topics only")

    # Proof that the validator can fail, and that it reads the schema as the
    # API server does for what is valid.
    if documents_only or not expected_kinds <= set(examples):
        return report()
    cluster = examples["Cluster"][0]
    topic = examples["Topic"][0]
    group = examples["ConsumerGroup"][0]
    # Each broken resource, and the field its error must be reported at (so
    # that it is rejected for the right reason).
    must_reject = {
        "a Cluster with brokers: 0": (with_change(cluster, "spec.brokers", 0), "spec.brokers"),
        "a Cluster without storage": (with_change(cluster, "spec.storage", delete=True), "spec"),
        "a Cluster with storage.size '10 GB'": (with_change(cluster, "spec.storage.size", "10 GB"), "spec.storage.size"),
        "a Cluster with an empty image": (with_change(cluster, "spec.image", ""), "spec.image"),
        "a Cluster with an unknown spec field (replicas)": (with_change(cluster, "spec.replicas", 3), "spec"),
        "a Cluster with a config value that is not a string": (
            with_change(cluster, "spec.config", {"num.partitions": 3}),
            "spec.config.num.partitions",
        ),
        "a Cluster with brokers past int32": (with_change(cluster, "spec.brokers", 2**31), "spec.brokers"),
        "a Cluster named with capitals": (with_change(cluster, "metadata.name", "Demo"), "metadata.name"),
        "a Cluster named with a dot": (with_change(cluster, "metadata.name", "demo.eu"), "metadata.name"),
        "a Topic without partitions": (with_change(topic, "spec.partitions", delete=True), "spec"),
        "a Topic with partitions: 'six'": (with_change(topic, "spec.partitions", "six"), "spec.partitions"),
        "a Topic with replicationFactor: 0": (with_change(topic, "spec.replicationFactor", 0), "spec.replicationFactor"),
        "a Topic with topicName 'bad name!'": (with_change(topic, "spec.topicName", "bad name!"), "spec.topicName"),
        "a ConsumerGroup with offsetReset.to: yesterday": (
            with_change(group, "spec.offsetReset", {"id": "r1", "to": "yesterday"}),
            "spec.offsetReset.to",
        ),
        "a ConsumerGroup with offsetReset without id": (
            with_change(group, "spec.offsetReset", {"to": "earliest"}),
            "spec.offsetReset",
        ),
        "a ConsumerGroup with no topics": (with_change(group, "spec.topics", []), "spec.topics"),
        "a ConsumerGroup whose lagPolicy lacks thresholdMessages": (
            with_change(group, "spec.lagPolicy", {"forSeconds": 60}),
            "spec.lagPolicy",
        ),
        "a ConsumerGroup with partitionScaling.maxPartitions: 0": (
            with_change(group, "spec.partitionScaling.maxPartitions", 0),
            "spec.partitionScaling.maxPartitions",
        ),
        "a resource of an unknown kind": (with_change(topic, "kind", "Queue"), "kind"),
        "a resource of an unknown version": (with_change(topic, "apiVersion", "runnel.dev/v1"), "kind"),
    }
    for label, (document, field) in must_reject.items():
        errors = errors_of(schemas, document)
        at_field = [(path, message) for path, message in errors if path == field]
        if at_field:
            ok(f"rejected {label}: {describe(at_field[:1])}")
        elif errors:
            fail(f"rejected {label}, but not at {field}: {describe(errors)}")
        else:
            fail(f"accepted {label}")

    must_accept = {
        "a Cluster with null storageClass (nullable)": with_change(cluster, "spec.storage.storageClass", None),
        "a Cluster with integer CPU requests (int-or-string)": with_change(cluster, "spec.resources", {"requests": {"cpu": 1, "memory": "1Gi"}}),
        "a ConsumerGroup with offsetReset to earliest": with_change(group, "spec.offsetReset", {"id": "r1", "to": "earliest"}),
        "a Topic with a topicName": with_change(topic, "spec.topicName", "orders.v1"),
        "a Topic named with a dot": with_change(topic, "metadata.name", "orders.v1"),
    }
    commented = uncommented_offset_reset(os.path.join(examples_dir, "consumer-group.yaml"))
    if commented is None:
        fail("consumer-group.yaml has no commented offsetReset example")
    else:
        must_accept["consumer-group.yaml with its commented offsetReset enabled"] = commented
    for label, document in must_accept.items():
        errors = errors_of(schemas, document)
        if errors:
            fail(f"rejected {label}: {describe(errors)}")
        else:
            ok(f"accepted {label}")
    return report()


def report():
    if FAILURES:
        print(f"validate_examples: {len(FAILURES)} failure(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
