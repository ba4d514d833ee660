"""The catalog: datasets, their sources, versions, and the engine that reads them."""
