// tools/common/progress_line.hpp — one line of progress for a batch (callsavvy::batch_progress), shared by
// the `callsavvy` tool and the demo: a bar redrawn in place on a terminal, plain lines when the output is a
// file or a pipe (so logs stay readable). Not part of the library: applications draw their own.
#pragma once

#include <callsavvy/batch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace callsavvy_tools {

/// Renders a batch's progress; `label` names what is counted ("contacts", "calls").
class progress_line {
public:
    explicit progress_line(std::string label, std::FILE* out = stderr)
        : label_(std::move(label)), out_(out), tty_(::isatty(::fileno(out)) == 1) {}

    /// Draws `p`. On a terminal every report redraws the bar; otherwise one line at most every
    /// `plain_interval`, and always the final report.
    void operator()(const callsavvy::batch_progress& p) {
        const auto now = std::chrono::steady_clock::now();
        if (!tty_ && !p.final && now - last_ < plain_interval) return;
        last_ = now;
        const std::string text = describe(p);
        if (tty_) {
            std::fprintf(out_, "\r\033[K%s%s", text.c_str(), p.final ? "\n" : "");
        } else {
            std::fprintf(out_, "%s\n", text.c_str());
        }
        std::fflush(out_);
    }

    /// The text of one report, without a line end: `[#####.....]  1200/3000 contacts  2 failed  ...`.
    std::string describe(const callsavvy::batch_progress& p) const {
        std::string s;
        if (p.total && *p.total > 0) {
            constexpr std::size_t width = 30;
            const std::size_t filled = p.done >= *p.total ? width : p.done * width / *p.total;
            s += '[';
            s.append(filled, '#');
            s.append(width - filled, '.');
            s += "] ";
        }
        s += std::to_string(p.done);
        if (p.total) s += '/' + std::to_string(*p.total);
        s += ' ' + label_;
        if (p.failed) s += "  " + std::to_string(p.failed) + " failed";
        if (!p.final) {
            s += "  " + std::to_string(static_cast<long long>(p.rate + 0.5)) + "/s";
            if (p.waiting_in_limiter) s += "  " + std::to_string(p.waiting_in_limiter) + " waiting for the rate limit";
            if (p.eta) s += "  ETA " + std::to_string((p.eta->count() + 999) / 1000) + " s";
        } else {
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(p.elapsed).count();
            s += "  in " + std::to_string(ms / 1000) + '.' + std::to_string(ms % 1000 / 100) + " s";
            if (p.not_started) s += "  " + std::to_string(p.not_started) + " not started";
        }
        return s;
    }

    std::chrono::steady_clock::duration plain_interval = std::chrono::seconds(1);

private:
    std::string label_;
    std::FILE* out_;
    bool tty_;
    std::chrono::steady_clock::time_point last_{};
};

} // namespace callsavvy_tools
