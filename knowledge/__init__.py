"""Programmes, FAQs and synonyms as YAML data, plus search and eligibility rules over them."""
