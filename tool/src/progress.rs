//! Progress output on stderr: plain lines, prefixed by the service they concern, and pull
//! progress bars when stderr is a terminal (plain lines otherwise).

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::engine::PullEvent;

/// Where progress goes.
#[derive(Debug)]
pub struct Progress {
    tty: bool,
    quiet: bool,
    multi: MultiProgress,
    lines: Mutex<Vec<(std::time::Instant, String)>>,
    capture: bool,
}

impl Progress {
    /// Progress on stderr, with bars when stderr is a terminal.
    pub fn stderr() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            quiet: false,
            multi: MultiProgress::new(),
            lines: Mutex::new(Vec::new()),
            capture: false,
        }
    }

    /// Progress that prints nothing.
    pub fn quiet() -> Progress {
        Progress {
            quiet: true,
            ..Progress::stderr()
        }
    }

    /// Progress kept in memory (see [`Progress::captured`]); for tests and benchmarks.
    pub fn capture() -> Progress {
        Progress {
            tty: false,
            quiet: true,
            multi: MultiProgress::new(),
            lines: Mutex::new(Vec::new()),
            capture: true,
        }
    }

    /// Lines recorded by a capturing progress.
    pub fn captured(&self) -> Vec<String> {
        self.captured_at().into_iter().map(|(_, l)| l).collect()
    }

    /// Lines recorded by a capturing progress, with the time each was emitted.
    pub fn captured_at(&self) -> Vec<(std::time::Instant, String)> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Whether bars and colours may be used.
    pub fn is_tty(&self) -> bool {
        self.tty && !self.quiet
    }

    /// One status line.
    pub fn line(&self, msg: impl AsRef<str>) {
        let msg = msg.as_ref();
        if self.capture {
            if let Ok(mut l) = self.lines.lock() {
                l.push((std::time::Instant::now(), msg.to_string()));
            }
        }
        if self.quiet {
            return;
        }
        if self.tty {
            let _ = self.multi.println(msg);
        } else {
            let _ = writeln!(std::io::stderr(), "{msg}");
        }
    }

    /// A status line about one service.
    pub fn service(&self, service: &str, msg: impl AsRef<str>) {
        self.line(format!("[{service}] {}", msg.as_ref()));
    }

    /// A sink for the progress events of pulling `image`.
    pub fn pull(&self, image: &str) -> PullProgress<'_> {
        let bar = if self.is_tty() {
            let bar = self.multi.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} pulling {msg} [{bar:30}] {bytes}/{total_bytes}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(image.to_string());
            Some(bar)
        } else {
            self.line(format!("pulling {image}"));
            None
        };
        PullProgress {
            progress: self,
            image: image.to_string(),
            bar,
            layers: BTreeMap::new(),
        }
    }
}

/// Pull progress of one image.
pub struct PullProgress<'p> {
    progress: &'p Progress,
    image: String,
    bar: Option<ProgressBar>,
    layers: BTreeMap<String, (u64, u64)>,
}

impl PullProgress<'_> {
    /// Takes one engine progress message.
    pub fn event(&mut self, e: PullEvent) {
        if let (Some(layer), Some(total)) = (&e.layer, e.total) {
            let current = e.current.unwrap_or(0);
            self.layers.insert(layer.clone(), (current, total));
        }
        if let Some(bar) = &self.bar {
            let (cur, tot) = self
                .layers
                .values()
                .fold((0, 0), |(c, t), (lc, lt)| (c + lc, t + lt));
            bar.set_length(tot);
            bar.set_position(cur);
        } else if e.layer.is_none() && !e.status.is_empty() {
            self.progress
                .line(format!("  {}: {}", self.image, e.status));
        }
    }

    /// Ends the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        self.progress.line(format!("pulled {}", self.image));
    }
}
