"""A/B/n experiments on a PersonalizedBlock's variants, an ExperimentBlock's arms or whole pages
(issue 8): models, assignment, exposure and conversion counting, results for the admin."""
