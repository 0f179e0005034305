//! The admin listener: JSON API and browsable UI.
