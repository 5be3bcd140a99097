"""HPO Service: the package users import (client, spec, settings) and the `hpo` command."""
