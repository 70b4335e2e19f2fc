//! The command atoms that tag requests and their replies.

/// A boot-server command, as named by the first element of a request and of its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    /// `get`: a whole file.
    Get,
    /// `list_dir`: a directory's entry names.
    ListDir,
    /// `read_file_info`: a `#file_info{}`, following symlinks.
    ReadFileInfo,
    /// `read_link_info`: a `#file_info{}` of the link itself.
    ReadLinkInfo,
    /// `get_cwd`: the server's working directory.
    GetCwd,
}

impl Command {
    /// Every command, in a fixed order.
    pub const ALL: [Command; 5] = [
        Command::Get,
        Command::ListDir,
        Command::ReadFileInfo,
        Command::ReadLinkInfo,
        Command::GetCwd,
    ];

    /// The atom on the wire.
    pub fn atom(self) -> &'static str {
        match self {
            Command::Get => "get",
            Command::ListDir => "list_dir",
            Command::ReadFileInfo => "read_file_info",
            Command::ReadLinkInfo => "read_link_info",
            Command::GetCwd => "get_cwd",
        }
    }

    /// The command an atom names, if any.
    pub fn from_atom(atom: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.atom() == atom)
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.atom())
    }
}
