"""Reading /metrics as Prometheus does: prometheus_client's own parser, samples by name and labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from support import web

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def scrape(base_url: str, **headers: str) -> Samples:
    response = web.get(f"{base_url}/metrics", headers=headers)
    response.raise_for_status()
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample's value, or None when there is no such series."""
    return samples.get((name, tuple(sorted(labels.items()))))
