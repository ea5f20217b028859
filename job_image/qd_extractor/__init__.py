"""The streaming gazette extractor that every Job pod runs."""
