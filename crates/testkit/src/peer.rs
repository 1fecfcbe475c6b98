//! Peer programs (baresip, linphonec) in a fresh HOME, their output in a
//! log file, killed and reaped on drop.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use tempfile::TempDir;

/// Where Debian's baresip keeps its modules.
pub const BARESIP_MODULES: &str = "/usr/lib/baresip/modules";

/// The baresip binary, with its modules; fails the test, naming the Debian
/// package, when it is not installed.
pub fn baresip_binary() -> PathBuf {
    let bin = crate::find_binary("baresip", "baresip-core");
    assert!(
        Path::new(BARESIP_MODULES).join("account.so").is_file(),
        "baresip's modules are not installed: run `bash .ci/install-deps` from the workspace \
         root, which installs the Debian package baresip-core listed in .ci/apt-packages"
    );
    bin
}

/// Starts baresip in a fresh HOME: listening on a free loopback port
/// only, the test CA `ca_pem` as `sip_cafile`, no sound card (a 440 Hz
/// sine as microphone), PCMU and SRTP, the accounts file holding
/// `account`, and `config_extra` (more config lines, such as a module and
/// its settings; `{home}` in them stands for the HOME) appended; it runs the menu command `command` (such as
/// `/dial ...`) if any, and quits after a minute.
pub fn start_baresip(
    ca_pem: &str,
    account: &str,
    command: Option<&str>,
    config_extra: &str,
) -> Peer {
    let bin = baresip_binary();
    let home = PeerHome::new();
    let ca_file = home.write("ca.pem", ca_pem);
    let listen = crate::free_tcp_port();
    home.write(
        ".baresip/config",
        &format!(
            "sip_listen 127.0.0.1:{listen}\n\
             sip_cafile {}\n\
             net_interface 127.0.0.1\n\
             module_path {BARESIP_MODULES}\n\
             module g711.so\n\
             module ausine.so\n\
             module srtp.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             audio_source ausine,440\n\
             ausrc_srate 48000\n\
             ausrc_channels 2\n\
             auplay_srate 48000\n\
             auplay_channels 2\n\
             {}",
            ca_file.display(),
            config_extra.replace("{home}", &home.path().display().to_string()),
        ),
    );
    home.write(".baresip/accounts", &format!("{account}\n"));
    let mut cmd = Command::new(bin);
    cmd.arg("-f")
        .arg(home.path().join(".baresip"))
        .args(["-t", "60"]);
    if let Some(c) = command {
        cmd.args(["-e", c]);
    }
    Peer::spawn(cmd, home, "baresip.log", false)
}

/// The linphonec binary; fails the test, naming the Debian package, when
/// it is not installed.
pub fn linphonec_binary() -> PathBuf {
    crate::find_binary("linphonec", "linphone-cli")
}

/// The account linphonec registers with [`start_linphonec`].
#[derive(Debug, Clone, Copy)]
pub struct LinphonecAccount<'a> {
    /// The registrar's (and outbound proxy's) TLS port on 127.0.0.1,
    /// reached as `localhost` so that the certificate's name is checked.
    pub port: u16,
    /// The user part of the address of record and the digest username.
    pub user: &'a str,
    /// The domain of the address of record (such as `127.0.0.1`).
    pub domain: &'a str,
    /// The digest password.
    pub password: &'a str,
    /// The digest realm.
    pub realm: &'a str,
}

/// Starts linphonec in a fresh HOME (with the data directory it needs)
/// registering `account` over TLS, on 127.0.0.1 with IPv6 off, in
/// client-only mode (no listening SIP port), its media on a free loopback
/// port (not its default 7078 on every interface), trusting only `ca_pem`
/// and verifying the server's certificate and its name; its debug log
/// goes to `linphonec.log` under HOME, its console output to
/// `linphonec.out`, and its standard input stays open for [`Peer::send`].
/// `sip_extra` is added to the `[sip]` section and `args` to the command
/// line (such as `-a` to answer calls on its own).
pub fn start_linphonec(
    ca_pem: &str,
    account: &LinphonecAccount<'_>,
    sip_extra: &str,
    args: &[&str],
) -> Peer {
    let bin = linphonec_binary();
    let home = PeerHome::new();
    home.write(".local/share/linphone/.keep", "");
    let ca_file = home.write("ca.pem", ca_pem);
    let LinphonecAccount {
        port,
        user,
        domain,
        password,
        realm,
    } = *account;
    let rc = home.write(
        "linphonerc",
        &format!(
            "[sip]\n\
             sip_port=0\n\
             sip_tcp_port=0\n\
             sip_tls_port=-1\n\
             bind_address=127.0.0.1\n\
             use_ipv6=0\n\
             root_ca={ca}\n\
             verify_server_certs=1\n\
             verify_server_cn=1\n\
             default_proxy=0\n\
             {sip_extra}\n\
             [proxy_0]\n\
             reg_proxy=<sip:localhost:{port};transport=tls>\n\
             reg_identity=sip:{user}@{domain}\n\
             reg_expires=60\n\
             reg_sendregister=1\n\
             publish=0\n\
             \n\
             [auth_info_0]\n\
             username={user}\n\
             userid={user}\n\
             passwd={password}\n\
             realm={realm}\n\
             domain={domain}\n\
             \n\
             [rtp]\n\
             bind_address=127.0.0.1\n\
             audio_rtp_port={rtp}\n",
            ca = ca_file.display(),
            rtp = crate::free_udp_port(),
        ),
    );
    let mut cmd = Command::new(bin);
    cmd.arg("-c")
        .arg(&rc)
        .arg("-d")
        .arg("6")
        .arg("-l")
        .arg(home.path().join("linphonec.log"))
        .args(args);
    Peer::spawn(cmd, home, "linphonec.out", true)
}

/// A fresh HOME for a peer program.
#[derive(Debug)]
pub struct PeerHome {
    dir: TempDir,
}

impl PeerHome {
    /// An empty temporary HOME.
    pub fn new() -> PeerHome {
        PeerHome {
            dir: tempfile::tempdir().expect("temporary HOME"),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `relative` under HOME, creating directories;
    /// returns the full path.
    pub fn write(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create directory in HOME");
        }
        fs::write(&path, contents).expect("write file in HOME");
        path
    }
}

impl Default for PeerHome {
    fn default() -> Self {
        Self::new()
    }
}

/// A running peer program; killed and reaped on drop.
#[derive(Debug)]
pub struct Peer {
    child: Child,
    home: PeerHome,
    log: PathBuf,
}

impl Peer {
    /// Starts `command` with HOME set to `home`, no standard input (or a
    /// pipe kept open when `keep_stdin`), and its output going to
    /// `log_name` under HOME.
    pub fn spawn(mut command: Command, home: PeerHome, log_name: &str, keep_stdin: bool) -> Peer {
        let log = home.path().join(log_name);
        let out = File::create(&log).expect("create log");
        let child = command
            .env("HOME", home.path())
            .stdin(if keep_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()));
        Peer { child, home, log }
    }

    /// Its HOME.
    pub fn home(&self) -> &PeerHome {
        &self.home
    }

    /// What it printed (or logged to `file` under HOME) so far, for
    /// assertions and failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A file under its HOME, read as text (empty when missing).
    pub fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.home.path().join(relative)).unwrap_or_default()
    }

    /// Writes `line` and a newline to its standard input (kept open when
    /// it was started with `keep_stdin`), such as a linphonec command.
    ///
    /// # Errors
    /// When its standard input is closed or was never a pipe.
    pub fn send(&mut self, line: &str) -> std::io::Result<()> {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("standard input is not a pipe"))?;
        stdin.write_all(line.as_bytes())?;
        stdin.write_all(b"\n")?;
        stdin.flush()
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Starts it again with `command` in the same HOME (after it exited,
    /// for instance because the port it was given was taken).
    pub fn respawn(&mut self, mut command: Command, keep_stdin: bool) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let out = File::create(&self.log).expect("create log");
        self.child = command
            .env("HOME", self.home.path())
            .stdin(if keep_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()));
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
