"""Every platform the ingest function answers, by route: adding one is a mapping module with its
``PLATFORM`` entry (``nudge.domain.platforms.Platform``) and one line here, plus its secret in
template.yaml, its sample events in events/ and its tests (CONTRIBUTING.md)."""

from __future__ import annotations

from nudge.domain.platforms import Platform, shopify, standard, woocommerce

PLATFORMS: dict[str, Platform] = {
    p.route: p for p in (standard.PLATFORM, shopify.PLATFORM, woocommerce.PLATFORM)
}
