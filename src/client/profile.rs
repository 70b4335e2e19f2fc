//! Boot profiles: the requests of one boot, in named phases, as the text `erlboot boot` and
//! `erlboot bench` replay (`captures/otp25-boot.requests` is the default one).
//!
//! One request per line — `get NAME`, `list_dir NAME`, `read_file_info NAME`,
//! `read_link_info NAME`, `get_cwd` — with `# phase NAME` lines starting a phase; other lines
//! starting with `#`, and blank lines, are ignored. Requests before the first phase line form
//! a phase named `requests`.

use std::fmt;

use crate::proto::{Command, Request};

/// A named run of requests.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// The phase's name.
    pub name: String,
    /// Its requests, in order.
    pub requests: Vec<Request>,
}

/// The requests of one boot, in phases.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BootProfile {
    /// The phases, none of them empty.
    pub phases: Vec<Phase>,
}

/// Why a profile could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// A line names no command.
    #[error("profile line {line}: {word:?} is not a command")]
    NotACommand {
        /// The line number, from 1.
        line: usize,
        /// What stood where the command should be.
        word: String,
    },
    /// A command that takes a file name has none.
    #[error("profile line {line}: {command} needs a file name")]
    MissingName {
        /// The line number, from 1.
        line: usize,
        /// The command.
        command: String,
    },
    /// A request that no text line can express (its name holds a line break).
    #[error("{0} cannot be written as a profile line")]
    Unwritable(String),
}

impl BootProfile {
    /// Reads a profile's text.
    pub fn parse(text: &str) -> Result<BootProfile, ProfileError> {
        let mut phases = vec![Phase {
            name: "requests".into(),
            requests: Vec::new(),
        }];
        for (number, line) in text.lines().enumerate() {
            if let Some(name) = line.strip_prefix("# phase ") {
                phases.push(Phase {
                    name: name.trim().to_owned(),
                    requests: Vec::new(),
                });
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (word, name) = line.split_once(' ').unwrap_or((line, ""));
            let request = match Command::from_atom(word) {
                Some(Command::GetCwd) if name.is_empty() => Request::GetCwd,
                Some(command) if name.is_empty() => {
                    return Err(ProfileError::MissingName {
                        line: number + 1,
                        command: command.atom().to_owned(),
                    })
                }
                Some(command) => Request::for_command(command, name.to_owned()),
                None => {
                    return Err(ProfileError::NotACommand {
                        line: number + 1,
                        word: word.to_owned(),
                    })
                }
            };
            phases.last_mut().expect("one phase").requests.push(request);
        }
        phases.retain(|p| !p.requests.is_empty());
        Ok(BootProfile { phases })
    }

    /// Every request, in order.
    pub fn requests(&self) -> impl Iterator<Item = &Request> {
        self.phases.iter().flat_map(|p| p.requests.iter())
    }

    /// The profile's text, with `header` lines (each written as a `#` comment) first.
    pub fn to_text(&self, header: &[&str]) -> Result<String, ProfileError> {
        let mut out = String::new();
        for line in header {
            out.push_str(&format!("# {line}\n"));
        }
        for phase in &self.phases {
            out.push_str(&format!("# phase {}\n", phase.name));
            for request in &phase.requests {
                out.push_str(&line(request)?);
                out.push('\n');
            }
        }
        Ok(out)
    }
}

/// One request as a profile line.
fn line(request: &Request) -> Result<String, ProfileError> {
    let unwritable = || ProfileError::Unwritable(request.to_term().to_string());
    let command = request.command().ok_or_else(unwritable)?.atom();
    match request.file_name() {
        Some(name) if name.contains(['\n', '\r']) => Err(unwritable()),
        Some(name) => Ok(format!("{command} {name}")),
        None => Ok(command.to_owned()),
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} requests)", self.name, self.requests.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_commands_and_comments() {
        let text = "# a comment\nget_cwd\n# phase boot\nget /a b\n\nlist_dir /l\n\
                    # phase later\nread_file_info /f\nread_link_info /k\nget_cwd c:\n";
        let profile = BootProfile::parse(text).unwrap();
        let names: Vec<_> = profile.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["requests", "boot", "later"]);
        assert_eq!(
            profile.requests().cloned().collect::<Vec<_>>(),
            [
                Request::GetCwd,
                Request::Get("/a b".into()),
                Request::ListDir("/l".into()),
                Request::ReadFileInfo("/f".into()),
                Request::ReadLinkInfo("/k".into()),
                Request::GetCwdDrive("c:".into()),
            ]
        );
        let text = profile.to_text(&["header"]).unwrap();
        assert!(text.starts_with("# header\n# phase requests\nget_cwd\n# phase boot\n"));
        assert_eq!(BootProfile::parse(&text).unwrap(), profile);
    }

    #[test]
    fn bad_lines_are_typed_errors() {
        assert_eq!(
            BootProfile::parse("list_dir\n"),
            Err(ProfileError::MissingName {
                line: 1,
                command: "list_dir".into()
            })
        );
        assert_eq!(
            BootProfile::parse("get /a\nfetch /b\n"),
            Err(ProfileError::NotACommand {
                line: 2,
                word: "fetch".into()
            })
        );
        let broken = BootProfile {
            phases: vec![Phase {
                name: "p".into(),
                requests: vec![Request::Get("a\nb".into())],
            }],
        };
        assert!(matches!(
            broken.to_text(&[]),
            Err(ProfileError::Unwritable(_))
        ));
    }
}
