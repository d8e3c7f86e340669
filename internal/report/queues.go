package report

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
)

// QueueStat is one asynq queue as `queue stats --json` prints it.
type QueueStat struct {
	Queue  string `json:"queue"`
	Paused bool   `json:"paused"`
	// Size counts the queue's tasks but the completed ones (kept for their retention):
	// pending, active, scheduled, retry, aggregating and archived.
	Size            int     `json:"size"`
	Pending         int     `json:"pending"`
	Active          int     `json:"active"`
	Scheduled       int     `json:"scheduled"`
	Retry           int     `json:"retry"`
	Archived        int     `json:"archived"`
	Completed       int     `json:"completed"`
	ProcessedToday  int     `json:"processed_today"`
	FailedToday     int     `json:"failed_today"`
	LatencySeconds  float64 `json:"latency_seconds"`
	MemoryUsageByte int64   `json:"memory_usage_bytes"`
}

// Queues reads every queue asynq knows and every queue of always (Herald's own, shown even
// before they hold a task), sorted by name.
func Queues(in *asynq.Inspector, always []string) ([]QueueStat, error) {
	names, err := in.Queues()
	if err != nil {
		return nil, err
	}
	for _, q := range always {
		if !slices.Contains(names, q) {
			names = append(names, q)
		}
	}
	slices.Sort(names)
	out := make([]QueueStat, 0, len(names))
	for _, q := range names {
		info, err := in.GetQueueInfo(q)
		if err != nil {
			out = append(out, QueueStat{Queue: q}) // a queue that has never held a task
			continue
		}
		// asynq's own info.Size (v0.26) adds the completed tasks too, though its documentation
		// says it does not.
		size := info.Pending + info.Active + info.Scheduled + info.Retry + info.Aggregating + info.Archived
		out = append(out, QueueStat{Queue: q, Paused: info.Paused, Size: size, Pending: info.Pending,
			Active: info.Active, Scheduled: info.Scheduled, Retry: info.Retry, Archived: info.Archived,
			Completed: info.Completed, ProcessedToday: info.Processed, FailedToday: info.Failed,
			LatencySeconds: info.Latency.Seconds(), MemoryUsageByte: info.MemoryUsage})
	}
	return out, nil
}

// PrintQueues renders queues as the table of `queue stats`.
func PrintQueues(w io.Writer, qs []QueueStat) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "QUEUE\tPAUSED\tPENDING\tACTIVE\tSCHEDULED\tRETRY\tARCHIVED\tCOMPLETED\tPROCESSED TODAY\tFAILED TODAY\tLATENCY\t")
	for _, s := range qs {
		fmt.Fprintf(tw, "%s\t%v\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", s.Queue, s.Paused, s.Pending, s.Active,
			s.Scheduled, s.Retry, s.Archived, s.Completed, s.ProcessedToday, s.FailedToday,
			(time.Duration(s.LatencySeconds * float64(time.Second))).Round(time.Millisecond))
	}
	return tw.Flush()
}
