//! Render: pure functions from stored exchanges to text (pages, diagram, log, HAR).
