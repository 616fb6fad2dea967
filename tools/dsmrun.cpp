// dsmrun: starts the ranks of a dsm job on this machine.
//
//   dsmrun [--transport shm|tcp|auto] [--timeout SECONDS] [--tag-output]
//          -n N prog args... [: -n M prog2 args...]
//
// Ranks are numbered across the colon-separated groups in order. Each rank
// finds the others through a rendezvous on a Unix socket that only holders
// of this job's random token may join. If any rank exits non-zero or dies by
// a signal, or the job overruns --timeout, the others are ended (SIGTERM,
// SIGKILL a second later) and dsmrun exits non-zero with one line naming
// the rank and the cause. SIGINT/SIGTERM/SIGHUP are forwarded to every rank.
#include <dsm/detail/rendezvous.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
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

[[noreturn]] void usage(std::string_view why) {
  fmt::print(stderr,
             "dsmrun: {}\nusage: dsmrun [--transport shm|tcp|auto] [--timeout SECONDS] [--tag-output] "
             "-n N prog args... [: -n M prog args...]\n",
             why);
  std::exit(2);
}

unsigned parse_count(const char* text) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(text, &end, 10);
  if (end == text || *end != '\0' || v == 0 || v > 4096) usage(fmt::format("-n needs a rank count from 1 to 4096, not '{}'", text));
  return static_cast<unsigned>(v);
}

options parse(int argc, char** argv) {
  options o;
  int i = 1;
  for (; i < argc && argv[i][0] == '-' && std::string_view(argv[i]) != "-n"; ++i) {
    const std::string_view a = argv[i];
    if (a == "--tag-output") {
      o.tag_output = true;
    } else if (a == "--transport" || a == "--timeout") {
      if (i + 1 >= argc) usage(fmt::format("{} needs a value", a));
      const char* v = argv[++i];
      if (a == "--transport") {
        o.transport = v;
        if (o.transport != "shm" && o.transport != "tcp" && o.transport != "auto")
          usage(fmt::format("unknown transport '{}'", v));
      } else {
        char* end = nullptr;
        o.timeout_seconds = std::strtod(v, &end);
        // As DSM_TIMEOUT's limit: finite and at most about 31 years.
        if (end == v || *end != '\0' || !(o.timeout_seconds > 0) || !(o.timeout_seconds <= 1e9))
          usage(fmt::format("--timeout needs seconds (more than 0, at most 1e9), not '{}'", v));
      }
    } else if (a == "-h" || a == "--help") {
      usage("help");
    } else {
      usage(fmt::format("unknown option {}", a));
    }
  }
  while (i < argc) {
    if (std::string_view(argv[i]) != "-n" || i + 1 >= argc) usage("each program group starts with -n N");
    program_group g;
    g.ranks = parse_count(argv[i + 1]);
    for (i += 2; i < argc && std::string_view(argv[i]) != ":"; ++i) g.argv.emplace_back(argv[i]);
    if (g.argv.empty()) usage("a program group names no program");
    o.groups.push_back(std::move(g));
    if (i < argc) ++i;  // the ':'
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

struct rank_process {
  pid_t pid = -1;
  bool exited = false;
  int status = 0;
  std::string program;
};

struct rendezvous_client {
  int fd;
  std::optional<unsigned> rank;
};

class launcher {
 public:
  explicit launcher(options o) : opt_(std::move(o)) {
    for (const auto& g : opt_.groups) total_ += g.ranks;
  }

  int run() {
    make_rendezvous_socket();
    block_signals();
    spawn_all();
    const int code = supervise();
    cleanup();
    return code;
  }

 private:
  void make_rendezvous_socket() {
    char dir_template[] = "/tmp/dsmrun.XXXXXX";
    if (::mkdtemp(dir_template) == nullptr) die(fmt::format("mkdtemp: {}", std::strerror(errno)));
    dir_ = dir_template;
    socket_path_ = dir_ + "/rendezvous";
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", socket_path_.c_str());
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::listen(listen_fd_, 128) != 0)
      die(fmt::format("rendezvous socket {}: {}", socket_path_, std::strerror(errno)));
    token_ = random_token();
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
    else if (emulated || mixed) ::setenv("UCX_TLS", shm, 0);  // auto: one machine, so shared memory
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
    const pid_t pid = ::fork();
    if (pid < 0) die(fmt::format("fork: {}", std::strerror(errno)));
    if (pid == 0) {
      ::setpgid(0, 0);  // its own group: a signal to the job reaches the rank's children too
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
    procs_.push_back({pid, false, 0, argv[0]});
    streams_.push_back({out[0], static_cast<int>(rank), stdout, {}});
    streams_.push_back({err[0], static_cast<int>(rank), stderr, {}});
  }

  int supervise() {
    const auto start = clock_type::now();
    std::optional<clock_type::time_point> kill_at;
    while (running() > 0 || open_streams() > 0) {
      std::vector<pollfd> fds;
      fds.push_back({signal_fd_, POLLIN, 0});
      fds.push_back({listen_fd_, POLLIN, 0});
      for (const auto& s : streams_) fds.push_back({s.fd, POLLIN, 0});
      ::poll(fds.data(), fds.size(), 100);

      if (fds[0].revents & POLLIN) handle_signals();
      if (fds[1].revents & POLLIN) accept_clients();
      for (std::size_t i = 0; i < streams_.size(); ++i)
        if (fds[2 + i].revents & (POLLIN | POLLHUP | POLLERR)) drain(streams_[i]);
      std::erase_if(streams_, [](const output_stream& s) { return s.fd < 0; });

      const auto now = clock_type::now();
      if (!failure_ && opt_.timeout_seconds > 0 &&
          now - start > std::chrono::duration<double>(opt_.timeout_seconds))
        fail(fmt::format("the job exceeded --timeout {} s", opt_.timeout_seconds), 124);
      if (failure_ && !kill_at) {
        signal_all(SIGTERM);
        kill_at = now + std::chrono::seconds(1);
      }
      if (kill_at && now >= *kill_at && running() > 0) {
        signal_all(SIGKILL);
        kill_at = now + std::chrono::hours(1);
      }
      // Streams of killed ranks may stay open if they left children behind:
      // stop waiting for output once every rank is gone and reaped.
      if (running() == 0 && failure_) break;
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
        fail(fmt::format("received {}; ended the job", signal_name(sig)), 128 + sig);
      }
    }
  }

  void reap() {
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      for (unsigned r = 0; r < procs_.size(); ++r) {
        if (procs_[r].pid != pid) continue;
        procs_[r].exited = true;
        procs_[r].status = status;
        if (WIFSIGNALED(status))
          fail(fmt::format("rank {} ({}) was killed by {}", r, procs_[r].program, signal_name(WTERMSIG(status))),
               128 + WTERMSIG(status));
        else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
          fail(fmt::format("rank {} ({}) exited with code {}", r, procs_[r].program, WEXITSTATUS(status)),
               WEXITSTATUS(status));
      }
    }
  }

  // The first failure names the job's fate; later ones are consequences.
  void fail(std::string what, int code) {
    if (!failure_) failure_ = std::pair{std::move(what), code};
  }

  void signal_all(int sig) {
    for (const auto& p : procs_)
      if (!p.exited) ::kill(-p.pid, sig);
  }

  unsigned running() const {
    unsigned n = 0;
    for (const auto& p : procs_) n += !p.exited;
    return n;
  }
  std::size_t open_streams() const { return streams_.size(); }

  void drain(output_stream& s) {
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
      return;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (!s.partial.empty()) emit(s, s.partial + "\n");
    ::close(s.fd);
    s.fd = -1;
  }

  void emit(const output_stream& s, std::string_view line) const {
    if (opt_.tag_output) fmt::print(s.to, "[{}] {}", s.rank, line);
    else fmt::print(s.to, "{}", line);
    std::fflush(s.to);
  }

  // A rank's hello is read whole, with a short deadline, so a client that
  // connects and says nothing cannot hold the launcher up for long.
  void accept_clients() {
    for (;;) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      rv::channel ch{fd, clock_type::now() + std::chrono::seconds(5), dsm::errc::bootstrap};
      try {
        auto [rank, token, address] = rv::read_hello(ch, [&](const std::string& reason) { refuse(ch, reason); });
        if (!rv::same_token(token, rv::as_bytes(token_))) refuse(ch, "wrong token");
        if (rank >= total_) refuse(ch, fmt::format("rank {} of a {}-rank job", rank, total_));
        if (addresses_.count(rank)) refuse(ch, fmt::format("rank {} joined already", rank));
        addresses_[rank] = std::move(address);
        joined_fds_.push_back(fd);
      } catch (const dsm::error& e) {
        fmt::print(stderr, "dsmrun: refused a rendezvous client: {}\n", e.message());
        ::close(fd);
        continue;
      }
      if (addresses_.size() == total_) send_tables();
    }
  }

  [[noreturn]] void refuse(rv::channel& ch, const std::string& reason) {
    std::vector<std::byte> msg;
    rv::append_u32(msg, rv::status_refused);
    rv::append_blob(msg, rv::as_bytes(reason));
    try {
      ch.write_all(msg, "refusal");
    } catch (const dsm::error&) {
    }
    throw dsm::error(dsm::errc::bootstrap, reason);
  }

  void send_tables() {
    std::vector<std::byte> table;
    rv::append_u32(table, rv::status_ok);
    rv::append_u32(table, total_);
    for (const auto& [rank, address] : addresses_) rv::append_blob(table, address);
    for (int fd : joined_fds_) {
      rv::channel ch{fd, clock_type::now() + std::chrono::seconds(10), dsm::errc::bootstrap};
      try {
        ch.write_all(table, "address table");
      } catch (const dsm::error& e) {
        fail(fmt::format("sending the address table: {}", e.message()), 1);
      }
    }
  }

  void cleanup() {
    for (int fd : joined_fds_) ::close(fd);
    ::close(listen_fd_);
    ::unlink(socket_path_.c_str());
    ::rmdir(dir_.c_str());
  }

  [[noreturn]] void die(const std::string& why) {
    fmt::print(stderr, "dsmrun: {}\n", why);
    if (!socket_path_.empty()) ::unlink(socket_path_.c_str());
    if (!dir_.empty()) ::rmdir(dir_.c_str());
    std::exit(1);
  }

  options opt_;
  unsigned total_ = 0;
  std::string dir_, socket_path_, token_;
  int listen_fd_ = -1, signal_fd_ = -1;
  sigset_t handled_{}, original_mask_{};
  std::vector<rank_process> procs_;
  std::vector<output_stream> streams_;
  std::map<std::uint32_t, std::vector<std::byte>> addresses_;
  std::vector<int> joined_fds_;
  std::optional<std::pair<std::string, int>> failure_;
};

}  // namespace

int main(int argc, char** argv) { return launcher(parse(argc, argv)).run(); }
