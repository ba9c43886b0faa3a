// A small `-key=value` command-line parser with registered options (name, default, help).
//
//   bench::ArgParser p;
//   p.add("b", "2", "batch size");
//   if (!p.parse(argc, argv)) return 0;      // -? printed the help
//   int b = p.get_int("b");                  // throws bench::ArgError naming the flag
//
// Every argument must be `-name=value` with a registered name; `-?` prints one entry per
// flag (help text, default) and makes parse() return false. Unknown flags, a missing `=`,
// and values that do not parse as the requested type throw ArgError with a message naming the
// flag; callers print it and exit -1. A flag given twice keeps the last value.
#pragma once

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iomanip>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

struct ArgError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class ArgParser {
public:
    // Registers -name with its default value and help text ('\n' starts a continuation line).
    ArgParser& add(std::string name, std::string default_value, std::string help) {
        opts_.push_back(Opt{std::move(name), default_value, std::move(help), default_value, false});
        return *this;
    }

    // Free text printed after the flag list by -? (formulas, exit codes ...).
    ArgParser& set_footer(std::string text) {
        footer_ = std::move(text);
        return *this;
    }

    // Returns false when -? was given (help written to `help_out`); throws ArgError.
    bool parse(int argc, const char* const* argv, std::ostream& help_out) {
        for (int i = 1; i < argc; ++i) {
            const std::string_view a = argv[i];
            if (a == "-?" || a == "--help") {
                print_help(help_out, argc > 0 ? argv[0] : "benchmark");
                return false;
            }
            if (a.size() < 2 || a[0] != '-')
                throw ArgError("unexpected argument '" + std::string(a) +
                               "': arguments are -name=value (run with -? for the list)");
            const size_t eq             = a.find('=');
            const std::string_view name = a.substr(1, eq == std::string_view::npos ? a.npos : eq - 1);
            Opt* o                      = find(name);
            if (!o)
                throw ArgError("unknown flag -" + std::string(name) + " (run with -? for the list)");
            if (eq == std::string_view::npos)
                throw ArgError("flag -" + o->name + " needs a value: -" + o->name + "=VALUE");
            o->value = std::string(a.substr(eq + 1));
            o->set   = true;
        }
        return true;
    }

    void print_help(std::ostream& os, std::string_view prog) const {
        os << "usage: " << prog << " [-name=value ...]\nargs:\n";
        for (const Opt& o : opts_) {
            std::string_view h = o.help;
            bool first         = true;
            while (true) {
                const size_t nl = h.find('\n');
                os << std::setw(18) << (first ? "-" + o.name : std::string()) << "    "
                   << h.substr(0, nl);
                if (nl == std::string_view::npos) break;
                os << '\n';
                h     = h.substr(nl + 1);
                first = false;
            }
            os << " (default:" << o.def << ")\n";
        }
        if (!footer_.empty()) os << footer_ << (footer_.back() == '\n' ? "" : "\n");
    }

    bool has(std::string_view name) const { return find(name) != nullptr; }
    bool is_set(std::string_view name) const { return get(name).set; }
    const std::string& str(std::string_view name) const { return get(name).value; }

    int64_t get_int64(std::string_view name) const { return parse_int(name, str(name)); }

    int get_int(std::string_view name) const {
        const int64_t v = get_int64(name);
        if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
            throw ArgError("-" + std::string(name) + ": value " + std::to_string(v) + " out of range");
        return static_cast<int>(v);
    }

    // 0 or 1 (also accepts true/false, y/n).
    bool get_bool(std::string_view name) const {
        const std::string& s = str(name);
        if (s == "1" || s == "true" || s == "y") return true;
        if (s == "0" || s == "false" || s == "n") return false;
        throw ArgError("-" + std::string(name) + ": expected 0 or 1, got '" + s + "'");
    }

    double get_double(std::string_view name) const {
        const std::string& s = str(name);
        errno                = 0;
        char* end            = nullptr;
        const double v       = s.empty() ? 0.0 : std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v))
            throw ArgError("-" + std::string(name) + ": expected a number, got '" + s + "'");
        return v;
    }

    float get_float(std::string_view name) const { return static_cast<float>(get_double(name)); }

    // Comma-separated integers ("55" or "55,60,1"); empty items are errors.
    std::vector<int64_t> get_int_list(std::string_view name) const {
        const std::string& s = str(name);
        std::vector<int64_t> out;
        size_t pos = 0;
        while (true) {
            const size_t comma = s.find(',', pos);
            const std::string item =
                s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
            if (item.empty())
                throw ArgError("-" + std::string(name) + ": malformed comma list '" + s +
                               "' (empty item)");
            out.push_back(parse_int(name, item, s));
            if (comma == std::string::npos) break;
            pos = comma + 1;
        }
        return out;
    }

private:
    struct Opt {
        std::string name, def, help, value;
        bool set = false;
    };
    std::vector<Opt> opts_;
    std::string footer_;

    const Opt* find(std::string_view name) const {
        for (const Opt& o : opts_)
            if (o.name == name) return &o;
        return nullptr;
    }
    Opt* find(std::string_view name) {
        for (Opt& o : opts_)
            if (o.name == name) return &o;
        return nullptr;
    }
    const Opt& get(std::string_view name) const {
        const Opt* o = find(name);
        if (!o) throw std::logic_error("ArgParser: flag -" + std::string(name) + " was never registered");
        return *o;
    }

    static int64_t parse_int(std::string_view name, const std::string& s,
                             const std::string& whole = {}) {
        int64_t v       = 0;
        const char* beg = s.data();
        if (!s.empty() && s[0] == '+') ++beg;
        const auto [ptr, ec] = std::from_chars(beg, s.data() + s.size(), v);
        if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) {
            std::string msg = "-" + std::string(name) + ": expected an integer, got '" + s + "'";
            if (!whole.empty() && whole != s) msg += " in '" + whole + "'";
            throw ArgError(msg);
        }
        return v;
    }
};

}  // namespace bench
