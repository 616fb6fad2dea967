// dsmrun: starts the ranks of a dsm job on this machine.
//
//   dsmrun [options] -n N prog args... [: [options] -n M prog2 args...]
//
// (dsmrun --help lists the options, dsmrun(1) describes them.) Ranks are numbered across the colon-separated groups in order. Each rank
// finds the others through a rendezvous on a Unix socket that only holders
// of this job's random token may join, and keeps its connection open: it
// says goodbye there when it leaves its runtime, reports a wait that gave
// up (and on whom), and hears when the job ends.
//
// How a job ends: if a rank dies by a signal, exits non-zero, exits (even
// with 0) before saying goodbye while others still run, or stops answering
// (the ranks waiting for it time out), or the job overruns --timeout, every
// rank is told (its waits then fail with errc::peer_failure naming the
// cause), SIGTERM follows a second later and SIGKILL half a second after
// that; dsmrun exits non-zero with one line naming the rank and the cause.
// SIGINT/SIGTERM/SIGHUP are forwarded to every rank. Nothing is left
// behind: every process of the ranks' process groups is ended, and the
// job's directories (the rendezvous socket's, under $TMPDIR, and the one
// UCX's shared-memory files go to, under $DSM_SHM_DIR or /dev/shm) are
// removed, by a guardian process even when dsmrun itself is killed; a rank
// whose launcher died is killed by the kernel (PR_SET_PDEATHSIG).
#include <dsm/config.hpp>
#include <dsm/detail/rendezvous.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace rv = dsm::detail::rendezvous;
using clock_type = std::chrono::steady_clock;

namespace {

struct program_group {
  unsigned ranks = 0;
  std::vector<std::string> argv;
};

struct options {
  std::string transport = "auto";
  double timeout_seconds = 0;  // 0: none
  bool tag_output = false;
  std::vector<program_group> groups;
};

constexpr std::string_view synopsis =
    "usage: dsmrun [options] -n N prog args... [: [options] -n M prog args...]";

// Every option and environment variable, one line each (dsmrun(1) says more).
constexpr std::string_view help_text = R"(Starts the ranks of a dsm job on this machine.

Options (anywhere before a group's program; a long option's value may also follow an =):
  -n N, -np N, --np N       ranks of this program group (1-4096); each group needs one
  --transport shm|tcp|auto  UCX transports: shm sets UCX_TLS=self,posix,sysv,cma, tcp sets
                            UCX_TLS=tcp,self, auto (default) means shm unless UCX_TLS is set
  --timeout SECONDS         end the whole job (exit 124) if it runs longer
  --tag-output              prefix every output line with [rank]
  -h, --help                print this help and exit
  -V, --version             print dsmrun's version and exit
  :                         separates program groups; ranks are numbered across them in order

Environment (read by dsmrun or the ranks):
  DSM_TIMEOUT=SECONDS       longest any single wait of a rank may take (default 120; 0 or inf: none)
  DSM_PROGRESS=thread|poll  progress engine (default poll with shared memory only, else thread)
  DSM_STATS=1               each rank prints its transfer, barrier and coherence counters at exit
  DSM_CHECK_RACES=1         a data race a write_shared home detects is an error, not a warning
  DSM_MAX_SEGMENT_BYTES=N   the largest segment a rank maps (default: physical memory)
  DSM_HOST_TIMEOUT=SECONDS  silence after which a rank on another machine counts as lost (default 3; 0: never)
  DSM_SHM_DIR=DIR           where the job's directory for UCX's posix files goes (default /dev/shm)
  TMPDIR=DIR                where the job's rendezvous socket directory goes (default /tmp)
  UCX_TLS, UCX_NET_DEVICES  UCX's own; --transport sets UCX_TLS, UCX_NET_DEVICES defaults to lo
  DSM_RANK, DSM_RANKS, DSM_RENDEZVOUS, DSM_TOKEN  set by dsmrun for the ranks' bootstrap

Exit status: 0 when every rank exits 0; else the first failed rank's exit code (128 + the
signal that killed it; 1 if it exited 0 early or stopped answering); 128 + the signal
dsmrun received (SIGINT, SIGTERM, SIGHUP); 124 on --timeout; 2 on bad usage.
)";

[[noreturn]] void usage(std::string_view why) {
  fmt::print(stderr, "dsmrun: {}\n{}\n(dsmrun --help lists every option)\n", why, synopsis);
  std::exit(2);
}

unsigned parse_count(std::string_view option, const char* text) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(text, &end, 10);
  if (end == text || *end != '\0' || v == 0 || v > 4096)
    usage(fmt::format("{} needs a rank count from 1 to 4096, not '{}'", option, text));
  return static_cast<unsigned>(v);
}

// Options may come anywhere before a group's program, as with mpirun:
// `dsmrun -n 2 --transport tcp ./prog` and `dsmrun --transport tcp -n 2
// ./prog` are the same job. The job-wide ones (--transport, --timeout,
// --tag-output) apply to every group wherever they are given.
options parse(int argc, char** argv) {
  options o;
  int i = 1;
  while (i < argc) {
    program_group g;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; ++i) {
      std::string_view a = argv[i];
      std::optional<std::string> inline_value;  // --opt=value
      if (const auto eq = a.find('='); a.starts_with("--") && eq != std::string_view::npos) {
        inline_value = std::string(a.substr(eq + 1));
        a = a.substr(0, eq);
      }
      const auto value = [&]() -> std::string {
        if (inline_value) return *inline_value;
        if (i + 1 >= argc) usage(fmt::format("{} needs a value", a));
        return argv[++i];
      };
      if (a == "-n" || a == "-np" || a == "--np") {
        if (g.ranks != 0) usage(fmt::format("{} given twice for one program group", a));
        g.ranks = parse_count(a, value().c_str());
      } else if (a == "--tag-output") {
        o.tag_output = true;
      } else if (a == "--transport") {
        o.transport = value();
        if (o.transport != "shm" && o.transport != "tcp" && o.transport != "auto")
          usage(fmt::format("unknown transport '{}' (shm, tcp or auto)", o.transport));
      } else if (a == "--timeout") {
        const std::string v = value();
        char* end = nullptr;
        o.timeout_seconds = std::strtod(v.c_str(), &end);
        // As DSM_TIMEOUT's limit: finite and at most about 31 years.
        if (end == v.c_str() || *end != '\0' || !(o.timeout_seconds > 0) || !(o.timeout_seconds <= 1e9))
          usage(fmt::format("--timeout needs seconds (more than 0, at most 1e9), not '{}'", v));
      } else if (a == "-h" || a == "--help") {
        fmt::print("{}\n\n{}", synopsis, help_text);
        std::exit(0);
      } else if (a == "-V" || a == "--version") {
        fmt::print("dsmrun (dsm) {}\n", DSM_VERSION);
        std::exit(0);
      } else {
        usage(fmt::format("unknown option {}", a));
      }
    }
    if (i >= argc || std::string_view(argv[i]) == ":") {
      if (o.groups.empty() && g.ranks == 0 && i >= argc) usage("no program to run");
      usage("a program group names no program");
    }
    if (g.ranks == 0) usage(fmt::format("no rank count for {}: give -n N (or -np N) before the program", argv[i]));
    for (; i < argc && std::string_view(argv[i]) != ":"; ++i) g.argv.emplace_back(argv[i]);
    o.groups.push_back(std::move(g));
    if (i < argc) {
      ++i;  // the ':'
      if (i >= argc) usage("nothing after ':'");
    }
  }
  if (o.groups.empty()) usage("no program to run");
  return o;
}

std::string random_token() {
  unsigned char raw[32];
  std::size_t got = 0;
  while (got < sizeof raw) {
    const ssize_t n = ::getrandom(raw + got, sizeof raw - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fmt::print(stderr, "dsmrun: getrandom: {}\n", std::strerror(errno));
      std::exit(1);
    }
    got += static_cast<std::size_t>(n);
  }
  std::string hex;
  for (unsigned char c : raw) hex += fmt::format("{:02x}", c);
  return hex;
}

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", sig);
}

// What a group's ranks run on: its program's ISA (from the ELF header),
// or the target of the qemu-user emulator that runs it.
struct group_machine {
  std::string isa;  // "x86-64", "arm64", "other" or "unknown" (unreadable)
  bool emulated = false;
};

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  for (std::string_view rest = path ? path : ""; !rest.empty();) {
    const auto colon = rest.find(':');
    const std::string candidate = fmt::format("{}/{}", rest.substr(0, colon), name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
  }
  return name;
}

group_machine machine_of(const std::vector<std::string>& argv) {
  const std::string& program = argv.front();
  const std::string_view base = std::string_view(program).substr(program.rfind('/') + 1);
  if (base.starts_with("qemu-")) {
    const std::string_view target = base.substr(5);
    return {target == "aarch64" ? "arm64" : target == "x86_64" ? "x86-64" : std::string(target), true};
  }
  unsigned char head[20] = {};
  const int fd = ::open(find_program(program).c_str(), O_RDONLY | O_CLOEXEC);
  const bool read_all = fd >= 0 && ::read(fd, head, sizeof head) == static_cast<ssize_t>(sizeof head);
  if (fd >= 0) ::close(fd);
  if (!read_all || std::memcmp(head, "\x7f" "ELF", 4) != 0) return {"unknown", false};
  const unsigned machine = head[18] | (head[19] << 8);  // e_machine, little-endian
  return {machine == 62 ? "x86-64" : machine == 183 ? "arm64" : "other", false};
}

// Output of one stream of one rank, forwarded whole lines at a time.
struct output_stream {
  int fd = -1;
  int rank = 0;
  std::FILE* to = stdout;
  std::string partial;
};

// A wait of a rank that timed out, as it reported it.
struct gave_up_report {
  std::uint32_t awaited;  // rv::notice_no_rank if none in particular
  std::string text;
  std::uint64_t order;    // reports are numbered as they arrive
};

struct rank_process {
  pid_t pid = -1;
  bool exited = false;
  int status = 0;
  std::string program;
  bool joined = false;        // sent its hello
  bool said_goodbye = false;  // left its runtime cleanly
  int stopped_by = 0;         // the signal that stopped it, while it is stopped
  std::optional<gave_up_report> gave_up;
};

// A connection on the rendezvous socket: its hello is read as it arrives
// (never blocking the launcher), then notices both ways.
struct rendezvous_client {
  int fd = -1;
  clock_type::time_point hello_by;
  std::vector<std::byte> in, out;
  std::optional<unsigned> rank;  // once its hello was taken
  rv::notice_reader notices;
  bool close_after_out = false;  // refused: close once the refusal is sent
};

void remove_directory(const std::string& dir) noexcept {
  if (dir.empty()) return;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string_view name = e->d_name;
      if (name != "." && name != "..") ::unlink(fmt::format("{}/{}", dir, name).c_str());
    }
    ::closedir(d);
  }
  ::rmdir(dir.c_str());
}

std::string make_directory_under(const char* env_name, const char* fallback) {
  const char* parent = std::getenv(env_name);
  std::string pattern = fmt::format("{}/dsmrun.XXXXXX", parent && *parent ? parent : fallback);
  if (::mkdtemp(pattern.data()) == nullptr) return {};
  return pattern;
}

// Runs in its own process from before the ranks start to after they end:
// told each rank's process group through a pipe, it waits for the pipe's
// end. dsmrun writes a last 'D' when it finished its own cleanup; without
// it, dsmrun died (kill -9): the guardian kills the ranks' groups and
// removes the job's directories.
[[noreturn]] void run_guardian(int from_launcher, const std::vector<std::string>& dirs) {
  ::setsid();  // outlives a signal to the launcher's process group
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) ::signal(s, SIG_IGN);
  for (int fd = 0; fd < 1024; ++fd)
    if (fd != from_launcher && fd != STDERR_FILENO) ::close(fd);
  const auto read_exact = [&](void* to, std::size_t bytes) {
    for (std::size_t got = 0; got < bytes;) {
      const ssize_t n = ::read(from_launcher, static_cast<char*>(to) + got, bytes - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      got += static_cast<std::size_t>(n);
    }
    return true;
  };
  // Records: 'P' and a process group, or a final 'D'.
  std::vector<pid_t> groups;
  bool done = false;
  for (char tag; read_exact(&tag, 1);) {
    pid_t g;
    if (tag == 'D') done = true;
    if (tag != 'P' || !read_exact(&g, sizeof g)) break;
    groups.push_back(g);
  }
  if (!done) {
    unsigned ended = 0;
    for (pid_t g : groups) ended += ::kill(-g, SIGKILL) == 0;
    for (const auto& d : dirs) remove_directory(d);
    fmt::print(stderr, "dsmrun: the launcher died; its guardian ended {} rank process group(s) and removed the job's "
                       "directories\n", ended);
  }
  ::_exit(0);
}

class launcher {
 public:
  explicit launcher(options o) : opt_(std::move(o)) {
    for (const auto& g : opt_.groups) total_ += g.ranks;
  }

  int run() {
    make_rendezvous_socket();
    make_shm_directory();
    start_guardian();
    block_signals();
    spawn_all();
    const int code = supervise();
    end_leftovers();
    cleanup();
    return code;
  }

 private:
  static constexpr auto hello_time = std::chrono::seconds(5);
  static constexpr auto blame_grace = std::chrono::milliseconds(500);  // for the other ranks' reports to arrive
  static constexpr auto term_grace = std::chrono::seconds(1);   // for told ranks to end themselves
  static constexpr auto kill_grace = std::chrono::milliseconds(500);
  // How long a rank whose connection to another failed may still be
  // reaped (it is dying: its sockets close just before it is a zombie)
  // before a connection lost between live ranks ends the job.
  static constexpr auto lost_peer_grace = std::chrono::seconds(2);

  void make_rendezvous_socket() {
    dir_ = make_directory_under("TMPDIR", "/tmp");
    if (dir_.empty()) die(fmt::format("mkdtemp under {}: {}", std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp",
                                      std::strerror(errno)));
    socket_path_ = dir_ + "/rendezvous";
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (socket_path_.size() >= sizeof sa.sun_path) die(fmt::format("rendezvous socket path too long: {}", socket_path_));
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", socket_path_.c_str());
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::listen(listen_fd_, 128) != 0)
      die(fmt::format("rendezvous socket {}: {}", socket_path_, std::strerror(errno)));
    token_ = random_token();
  }

  // UCX's posix transport files go to a directory of this job's (when UCX
  // is not told otherwise), removed at the end whatever happened.
  void make_shm_directory() {
    if (std::getenv("UCX_POSIX_DIR") != nullptr) return;
    shm_dir_ = make_directory_under("DSM_SHM_DIR", "/dev/shm");
    if (!shm_dir_.empty()) ::setenv("UCX_POSIX_DIR", shm_dir_.c_str(), 1);
  }

  void start_guardian() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) die(fmt::format("pipe: {}", std::strerror(errno)));
    std::fflush(nullptr);
    guardian_ = ::fork();
    if (guardian_ < 0) die(fmt::format("fork: {}", std::strerror(errno)));
    if (guardian_ == 0) {
      ::close(p[1]);
      run_guardian(p[0], {dir_, shm_dir_});
    }
    ::close(p[0]);
    to_guardian_ = p[1];
  }

  void block_signals() {
    sigemptyset(&handled_);
    for (int s : {SIGCHLD, SIGINT, SIGTERM, SIGHUP}) sigaddset(&handled_, s);
    ::sigprocmask(SIG_BLOCK, &handled_, &original_mask_);
    signal_fd_ = ::signalfd(-1, &handled_, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd_ < 0) die(fmt::format("signalfd: {}", std::strerror(errno)));
  }

  // A job with ranks under qemu-user leaves out cma (qemu does not
  // implement process_vm_writev); one that mixes ISAs or emulates says
  // which ranks run what and the transport chosen.
  void set_transport_environment() const {
    // Never let UCX open a lane on anything but loopback unless told to.
    ::setenv("UCX_NET_DEVICES", "lo", 0);
    std::vector<group_machine> machines;
    bool emulated = false, mixed = false;
#if defined(__x86_64__)
    const std::string_view native = "x86-64";
#elif defined(__aarch64__)
    const std::string_view native = "arm64";
#else
    const std::string_view native = "other";
#endif
    for (const auto& g : opt_.groups) {
      machines.push_back(machine_of(g.argv));
      const auto& m = machines.back();
      // The kernel would refuse it (ENOEXEC) and exec would hand it to the shell.
      if (!m.emulated && m.isa != native && (m.isa == "x86-64" || m.isa == "arm64"))
        usage(fmt::format("{} is an {} program and this machine runs {}: start it through qemu-{} -L / {}",
                          g.argv.front(), m.isa, native, m.isa == "arm64" ? "aarch64" : "x86_64", g.argv.front()));
      emulated = emulated || machines.back().emulated;
      mixed = mixed || machines.back().isa != machines.front().isa;
    }
    const char* shm = emulated ? "self,posix,sysv" : "self,posix,sysv,cma";
    // self serves a rank's operations on its own memory.
    if (opt_.transport == "shm") ::setenv("UCX_TLS", shm, 1);
    else if (opt_.transport == "tcp") ::setenv("UCX_TLS", "tcp,self", 1);
    // auto: every rank dsmrun starts is on this machine, so shared memory
    // (a user's UCX_TLS wins). It also makes the ranks' progress default
    // polling: a progress thread would take turns on the two busy cores of
    // a fully subscribed machine with the ranks' own threads.
    else ::setenv("UCX_TLS", shm, 0);
    if (!emulated && !mixed) return;
    std::string ranks;
    unsigned first = 0;
    for (std::size_t i = 0; i < machines.size(); ++i) {
      const unsigned n = opt_.groups[i].ranks;
      ranks += fmt::format("{}{} {}{}", ranks.empty() ? "" : ", ", n == 1 ? fmt::format("rank {}", first) : fmt::format("ranks {}-{}", first, first + n - 1),
                           machines[i].isa, machines[i].emulated ? " (qemu-user)" : "");
      first += n;
    }
    const char* tls = std::getenv("UCX_TLS");
    fmt::print(stderr, "dsmrun: {}; transport {}: UCX_TLS={}\n", ranks,
               opt_.transport == "auto" ? "shm (auto)" : opt_.transport, tls ? tls : "(UCX's choice)");
  }

  void spawn_all() {
    set_transport_environment();
    unsigned rank = 0;
    for (const auto& g : opt_.groups)
      for (unsigned k = 0; k < g.ranks; ++k) spawn(rank++, g.argv);
  }

  void spawn(unsigned rank, const std::vector<std::string>& argv) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) die("pipe failed");
    const pid_t launcher_pid = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) die(fmt::format("fork: {}", std::strerror(errno)));
    if (pid == 0) {
      ::setpgid(0, 0);  // its own group: a signal to the job reaches the rank's children too
      // Killed with the launcher: a rank never outlives a dsmrun killed -9.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != launcher_pid) ::_exit(1);  // it died already
      ::sigprocmask(SIG_SETMASK, &original_mask_, nullptr);
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(err[1], STDERR_FILENO);
      ::setenv(rv::env_socket, socket_path_.c_str(), 1);
      ::setenv(rv::env_token, token_.c_str(), 1);
      ::setenv(rv::env_rank, std::to_string(rank).c_str(), 1);
      ::setenv(rv::env_ranks, std::to_string(total_).c_str(), 1);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      fmt::print(stderr, "dsmrun: rank {}: cannot run {}: {}\n", rank, argv[0], std::strerror(errno));
      ::_exit(127);
    }
    ::setpgid(pid, pid);
    ::close(out[1]);
    ::close(err[1]);
    char record[1 + sizeof pid] = {'P'};
    std::memcpy(record + 1, &pid, sizeof pid);
    [[maybe_unused]] const auto told = ::write(to_guardian_, record, sizeof record);
    rank_process p;
    p.pid = pid;
    p.program = argv[0];
    procs_.push_back(std::move(p));
    streams_.push_back({out[0], static_cast<int>(rank), stdout, {}});
    streams_.push_back({err[0], static_cast<int>(rank), stderr, {}});
  }

  // One loop serves everything, none of it blocking: signals, the
  // rendezvous (hellos arrive in pieces, tables and notices are written as
  // the socket takes them), the ranks' output, and the timers (--timeout,
  // the blame grace, SIGTERM and SIGKILL after a failure).
  int supervise() {
    const auto start = clock_type::now();
    while (running() > 0) {
      std::vector<pollfd> fds;
      fds.push_back({signal_fd_, POLLIN, 0});
      fds.push_back({listen_fd_, POLLIN, 0});
      for (const auto& c : clients_)
        fds.push_back({c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
      for (const auto& s : streams_) fds.push_back({s.fd, POLLIN, 0});
      const std::size_t client_count = clients_.size();  // those polled; accept_clients adds more
      ::poll(fds.data(), fds.size(), 50);

      if (fds[0].revents & POLLIN) handle_signals();
      if (fds[1].revents & POLLIN) accept_clients();
      for (std::size_t i = 0; i < client_count; ++i) serve(clients_[i], fds[2 + i].revents);
      for (std::size_t i = 0; i < streams_.size(); ++i)
        if (fds[2 + client_count + i].revents & (POLLIN | POLLHUP | POLLERR)) drain(streams_[i]);
      std::erase_if(streams_, [](const output_stream& s) { return s.fd < 0; });

      const auto now = clock_type::now();
      for (auto& c : clients_)
        if (!c.rank && !c.close_after_out && c.fd >= 0 && now > c.hello_by) {
          fmt::print(stderr, "dsmrun: dropped a rendezvous client that sent no hello within {} s\n",
                     hello_time.count());
          close_client(c);
        }
      std::erase_if(clients_, [](const rendezvous_client& c) { return c.fd < 0; });

      if (!failure_ && opt_.timeout_seconds > 0 && now - start > std::chrono::duration<double>(opt_.timeout_seconds))
        fail(rv::notice_no_rank, fmt::format("the job exceeded --timeout {} s", opt_.timeout_seconds), 124);
      answer_lost_peers();
      if (!failure_ && blame_at_ && now >= *blame_at_) blame();
      if (failure_ && now >= term_at_ && !termed_) {
        signal_all(SIGTERM);
        termed_ = true;
      }
      if (failure_ && now >= term_at_ + kill_grace && !killed_) {
        signal_all(SIGKILL);
        killed_ = true;
      }
    }
    if (!failure_ && blame_at_) blame();  // the last ranks gave up and ended before the grace did
    // Every rank is gone: what they wrote is in the pipes or nowhere. A
    // grandchild still holding a pipe must not keep the job alive.
    for (auto& s : streams_) {
      ::fcntl(s.fd, F_SETFL, ::fcntl(s.fd, F_GETFL) | O_NONBLOCK);
      while (s.fd >= 0 && drain(s)) {
      }
      if (s.fd >= 0) close_stream(s);
    }
    if (failure_) {
      fmt::print(stderr, "dsmrun: {}\n", failure_->first);
      return failure_->second;
    }
    return 0;
  }

  void handle_signals() {
    signalfd_siginfo info;
    while (::read(signal_fd_, &info, sizeof info) == sizeof info) {
      const int sig = static_cast<int>(info.ssi_signo);
      if (sig == SIGCHLD) {
        reap();
      } else {
        signal_all(sig);
        fail(rv::notice_no_rank, fmt::format("received {}; ended the job", signal_name(sig)), 128 + sig);
      }
    }
  }

  void reap() {
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG | WUNTRACED | WCONTINUED)) > 0) {
      for (unsigned r = 0; r < procs_.size(); ++r) {
        rank_process& p = procs_[r];
        if (p.pid != pid) continue;
        if (WIFSTOPPED(status)) {
          p.stopped_by = WSTOPSIG(status);
        } else if (WIFCONTINUED(status)) {
          p.stopped_by = 0;
        } else {
          p.exited = true;
          p.status = status;
          p.stopped_by = 0;
          ended(r);
        }
      }
    }
  }

  // How rank r's end bears on the job (once what it said before it ended
  // is read).
  void ended(unsigned r) {
    for (auto& c : clients_)
      if (c.rank == r) serve(c, POLLIN);
    const rank_process& p = procs_[r];
    // It gave up waiting for another rank: the failure is whoever it
    // waited for (decided once the other ranks' reports are in).
    if (p.gave_up && !p.said_goodbye) {
      if (!blame_at_) blame_at_ = clock_type::now() + blame_grace;
      return;
    }
    // Without a goodbye, a rank's end matters unless every other rank
    // finished (it left last, or was never part of a dsm job).
    const bool others_finished = std::all_of(procs_.begin(), procs_.end(), [&](const rank_process& q) {
      return &q == &p || (q.exited && q.said_goodbye);
    });
    const bool early = !p.said_goodbye && !others_finished && (p.joined || anyone_joined());
    if (WIFSIGNALED(p.status) || WEXITSTATUS(p.status) != 0 || early) fail(r, end_of(r), exit_code_of(r));
  }

  // How rank r ended, as a failure of the job.
  std::string end_of(unsigned r) const {
    const rank_process& p = procs_[r];
    if (WIFSIGNALED(p.status)) return fmt::format("rank {} ({}) was killed by {}", r, p.program, signal_name(WTERMSIG(p.status)));
    if (WEXITSTATUS(p.status) != 0) return fmt::format("rank {} ({}) exited with code {}", r, p.program, WEXITSTATUS(p.status));
    return fmt::format("rank {} ({}) exited with code 0 {}", r, p.program,
                       p.joined ? "before the job finished (without leaving its dsm::runtime)" : "without joining the job");
  }
  int exit_code_of(unsigned r) const {
    const int status = procs_[r].status;
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1;
  }

  // Follows "gave up waiting for" from the first rank that reported a
  // timeout to one that did not: that one stopped answering.
  void blame() {
    unsigned first = 0;
    std::uint64_t earliest = UINT64_MAX;
    for (unsigned r = 0; r < procs_.size(); ++r)
      if (procs_[r].gave_up && procs_[r].gave_up->order < earliest) earliest = procs_[r].gave_up->order, first = r;
    std::set<unsigned> seen;
    unsigned at = first, waiter = first;  // waiter: the rank that waited for `at`
    while (procs_[at].gave_up && procs_[at].gave_up->awaited < procs_.size() && seen.insert(at).second)
      waiter = std::exchange(at, procs_[at].gave_up->awaited);
    const auto& report = *procs_[first].gave_up;
    if (procs_[at].gave_up) {  // a cycle, or no rank in particular
      fail(first, fmt::format("rank {} ({}) gave up: {}", first, procs_[first].program, report.text), 1);
      return;
    }
    const rank_process& culprit = procs_[at];
    if (culprit.exited) return fail(at, end_of(at), exit_code_of(at));  // the others' failures follow from it
    const std::string state =
        culprit.stopped_by ? fmt::format(" (stopped by {})", signal_name(culprit.stopped_by)) : std::string();
    fail(at, fmt::format("rank {} ({}) stopped answering{}: rank {} gave up on it: {}", at, culprit.program, state,
                         waiter, procs_[waiter].gave_up->text),
         1);
  }

  // The first failure names the job's fate; later ones are consequences.
  // Every rank still connected is told at once; SIGTERM and SIGKILL follow.
  // Ranks still waiting for the address table get a refusal instead.
  void fail(std::uint32_t culprit, std::string what, int code) {
    if (failure_) return;
    const std::string text = fmt::format("dsmrun ended the job: {}", what);
    std::vector<std::byte> notice;
    if (tables_sent_) {
      notice = rv::encode({rv::notice_ending, culprit, text});
    } else {
      rv::append_u32(notice, rv::status_refused);
      rv::append_blob(notice, rv::as_bytes(std::string_view(text).substr(0, rv::max_reason_bytes)));
    }
    for (auto& c : clients_)
      if (c.rank && c.fd >= 0 && !procs_[*c.rank].exited) c.out.insert(c.out.end(), notice.begin(), notice.end());
    failure_ = std::pair{std::move(what), code};
    term_at_ = clock_type::now() + term_grace;
    // A stopped process heeds nothing but SIGKILL: no grace for it.
    for (const auto& p : procs_)
      if (p.stopped_by && !p.exited) ::kill(-p.pid, SIGKILL);
  }

  // Each rank that lost its connection to another learns that one's fate:
  // the job's end naming how it ended (sent by fail() to every rank), or
  // that it finished, or, if it still runs past lost_peer_grace, the job
  // ends as a connection lost between live ranks.
  void answer_lost_peers() {
    if (questions_.empty()) return;
    reap();  // a rank that ended, its SIGCHLD not read yet
    const auto now = clock_type::now();
    std::erase_if(questions_, [&](const lost_peer_question& q) {
      if (failure_) return true;  // every rank has been told
      const rank_process& lost = procs_[q.about];
      if (lost.exited) {
        // A failure's end was announced by ended() (or is, after the blame grace).
        if (lost.said_goodbye) send_notice(q.asker, {rv::notice_peer_finished, q.about, {}});
        return true;
      }
      if (now < q.until) return false;
      const std::string state =
          lost.stopped_by ? fmt::format(" (stopped by {})", signal_name(lost.stopped_by)) : std::string();
      fail(q.about, fmt::format("rank {} ({}) still runs{} but rank {} lost its connection to it ({})", q.about,
                                lost.program, state, q.asker, q.how),
           1);
      return true;
    });
  }

  void send_notice(unsigned rank, const rv::notice& n) {
    const auto bytes = rv::encode(n);
    for (auto& c : clients_)
      if (c.rank == rank && c.fd >= 0) c.out.insert(c.out.end(), bytes.begin(), bytes.end());
  }

  bool anyone_joined() const {
    return std::any_of(procs_.begin(), procs_.end(), [](const rank_process& p) { return p.joined; });
  }

  void signal_all(int sig) {
    for (const auto& p : procs_)
      if (!p.exited) ::kill(-p.pid, sig);
  }

  // What the ranks left in their process groups (background children).
  void end_leftovers() {
    for (const auto& p : procs_) ::kill(-p.pid, SIGKILL);
  }

  unsigned running() const {
    unsigned n = 0;
    for (const auto& p : procs_) n += !p.exited;
    return n;
  }

  // Reads what is there; false once the stream is closed or (non-blocking)
  // empty.
  bool drain(output_stream& s) {
    char buf[65536];
    const ssize_t n = ::read(s.fd, buf, sizeof buf);
    if (n > 0) {
      s.partial.append(buf, static_cast<std::size_t>(n));
      std::size_t start = 0, nl;
      while ((nl = s.partial.find('\n', start)) != std::string::npos) {
        emit(s, std::string_view(s.partial).substr(start, nl - start + 1));
        start = nl + 1;
      }
      s.partial.erase(0, start);
      return true;
    }
    if (n < 0 && errno == EINTR) return true;
    if (n < 0 && errno == EAGAIN) return false;
    close_stream(s);
    return false;
  }

  void close_stream(output_stream& s) {
    if (!s.partial.empty()) emit(s, s.partial + "\n");
    s.partial.clear();
    ::close(s.fd);
    s.fd = -1;
  }

  void emit(const output_stream& s, std::string_view line) const {
    if (opt_.tag_output) fmt::print(s.to, "[{}] {}", s.rank, line);
    else fmt::print(s.to, "{}", line);
    std::fflush(s.to);
  }

  void accept_clients() {
    for (;;) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) return;
      rendezvous_client c;
      c.fd = fd;
      c.hello_by = clock_type::now() + hello_time;
      clients_.push_back(std::move(c));
    }
  }

  void serve(rendezvous_client& c, short revents) {
    if (c.fd < 0) return;
    if (revents & POLLOUT) flush(c);
    if (c.fd < 0 || !(revents & (POLLIN | POLLHUP | POLLERR))) return;
    std::byte buf[16384];
    bool closed = false;
    for (;;) {
      const ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        if (c.rank) c.notices.feed({buf, static_cast<std::size_t>(n)});
        else c.in.insert(c.in.end(), buf, buf + n);
        if (!c.rank && c.in.size() > 2 * rv::max_address_bytes) return refuse(c, "a hello longer than any");
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      closed = true;  // the client closed: a rank does at its end
      break;
    }
    try {
      if (!c.rank) take_hello(c);
      while (c.rank && c.fd >= 0) {
        const auto n = c.notices.next();
        if (!n) break;
        rank_process& p = procs_[*c.rank];
        if (n->kind == rv::notice_goodbye) p.said_goodbye = true;
        else if (n->kind == rv::notice_gave_up) p.gave_up = gave_up_report{n->rank, n->text, reports_++};
        else if (n->kind == rv::notice_lost_peer && n->rank < procs_.size())
          questions_.push_back({*c.rank, n->rank, n->text, clock_type::now() + lost_peer_grace});
        else throw dsm::error(dsm::errc::protocol, fmt::format("a rank sent notice kind {}", n->kind));
      }
    } catch (const dsm::error& e) {
      fmt::print(stderr, "dsmrun: {} the rendezvous: {}\n",
                 c.rank ? fmt::format("rank {} broke", *c.rank) : std::string("refused a client of"), e.message());
      close_client(c);
    }
    if (closed) close_client(c);
  }

  void take_hello(rendezvous_client& c) {
    std::string refusal;
    const auto refuse_with = [&](const std::string& reason) { throw refusal_reason{reason}; };
    try {
      const auto h = rv::parse_hello(c.in, refuse_with);
      if (!h) return;
      if (!rv::same_token(h->token, rv::as_bytes(token_))) refuse_with("wrong token");
      if (h->rank >= total_) refuse_with(fmt::format("rank {} of a {}-rank job", h->rank, total_));
      if (addresses_.count(h->rank)) refuse_with(fmt::format("rank {} joined already", h->rank));
      addresses_[h->rank] = h->address;
      c.rank = h->rank;
      c.in.clear();
      procs_[h->rank].joined = true;
    } catch (const refusal_reason& r) {
      return refuse(c, r.text);
    }
    if (addresses_.size() == total_) send_tables();
    // A rank that ended without joining leaves the others waiting for a
    // table that can never be complete.
    for (unsigned r = 0; r < procs_.size(); ++r)
      if (procs_[r].exited && !procs_[r].joined)
        fail(r, fmt::format("rank {} ({}) exited without joining the job", r, procs_[r].program), 1);
  }

  struct refusal_reason {
    std::string text;
  };

  void refuse(rendezvous_client& c, const std::string& reason) {
    fmt::print(stderr, "dsmrun: refused a rendezvous client: {}\n", reason);
    rv::append_u32(c.out, rv::status_refused);
    rv::append_blob(c.out, rv::as_bytes(reason));
    c.close_after_out = true;
    c.in.clear();
    flush(c);
  }

  void send_tables() {
    tables_sent_ = true;
    std::vector<std::byte> table;
    rv::append_u32(table, rv::status_ok);
    rv::append_u32(table, total_);
    for (const auto& [rank, address] : addresses_) rv::append_blob(table, address);
    for (auto& c : clients_)
      if (c.rank && c.fd >= 0) {
        c.out.insert(c.out.end(), table.begin(), table.end());
        flush(c);
      }
  }

  // Writes what the socket takes now; the rest when it is writable.
  void flush(rendezvous_client& c) {
    while (!c.out.empty()) {
      const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c.out.erase(c.out.begin(), c.out.begin() + n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      close_client(c);  // gone
      return;
    }
    if (c.close_after_out) close_client(c);
  }

  void close_client(rendezvous_client& c) {
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
  }

  void cleanup() {
    for (auto& c : clients_) close_client(c);
    ::close(listen_fd_);
    ::unlink(socket_path_.c_str());
    ::rmdir(dir_.c_str());
    remove_directory(shm_dir_);
    // The guardian's work is done.
    [[maybe_unused]] const auto told = ::write(to_guardian_, "D", 1);
    ::close(to_guardian_);
    int status = 0;
    ::waitpid(guardian_, &status, 0);
  }

  [[noreturn]] void die(const std::string& why) {
    fmt::print(stderr, "dsmrun: {}\n", why);
    if (!socket_path_.empty()) ::unlink(socket_path_.c_str());
    if (!dir_.empty()) ::rmdir(dir_.c_str());
    remove_directory(shm_dir_);
    if (to_guardian_ >= 0) {
      [[maybe_unused]] const auto told = ::write(to_guardian_, "D", 1);
      ::close(to_guardian_);
    }
    std::exit(1);
  }

  options opt_;
  unsigned total_ = 0;
  std::string dir_, socket_path_, token_, shm_dir_;
  int listen_fd_ = -1, signal_fd_ = -1, to_guardian_ = -1;
  pid_t guardian_ = -1;
  sigset_t handled_{}, original_mask_{};
  std::vector<rank_process> procs_;
  std::vector<output_stream> streams_;
  std::vector<rendezvous_client> clients_;
  std::map<std::uint32_t, std::vector<std::byte>> addresses_;
  std::uint64_t reports_ = 0;
  std::optional<clock_type::time_point> blame_at_;
  struct lost_peer_question {
    unsigned asker, about;
    std::string how;  // UCX's word for the failure
    clock_type::time_point until;
  };
  std::vector<lost_peer_question> questions_;
  clock_type::time_point term_at_{};
  bool termed_ = false, killed_ = false, tables_sent_ = false;
  std::optional<std::pair<std::string, int>> failure_;
};

}  // namespace

int main(int argc, char** argv) { return launcher(parse(argc, argv)).run(); }
