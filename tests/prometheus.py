"""Reading a Prometheus endpoint the way a scraper does, for the metrics tests."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(url: str) -> Samples | None:
    """The samples at `url`, or None while nothing answers there."""
    try:
        response = httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 for a series not yet created (a counter not yet incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def labelsets(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for sample_name, labels in samples if sample_name == name]
