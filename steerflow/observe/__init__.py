"""Observability: metrics, the HTML report and the live dashboard, all computed from a campaign's journal."""
