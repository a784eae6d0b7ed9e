//! Manifests: raw YAML structs, interpolation, validation, and the checked `Manifest` the rest of the code uses.
