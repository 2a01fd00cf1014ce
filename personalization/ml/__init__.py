"""Machine learning for Tailored: recommender, offline evaluation, personas, propensity.

Nothing here imports Django at module level except the loaders that say so (`catalog.demo_catalog`)."""
