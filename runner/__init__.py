"""Reproduction runner (torch + timm): re-runs a flagged run at small scale with and
without the proposed fix. Built in a later issue; the core package never imports it."""
