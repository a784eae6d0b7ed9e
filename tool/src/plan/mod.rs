//! Plan computation: a pure function from the desired manifest and the observed engine state to a plan, and its rendering.
