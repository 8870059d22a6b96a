package testenv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// NoProduction is the production queue of a router whose events all go to sandboxes: a
// message sent to it fails the test.
type NoProduction struct{ T testing.TB }

// SendMessageBatch fails the test and the send.
func (p NoProduction) SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	p.T.Error("an event went to production")
	return nil, errors.New("no production queue in this test")
}

// SQSRegion is the region the test clients give the local endpoint, which needs one.
const SQSRegion = "us-east-1"

// SQSEndpoint returns the URL of the SQS-compatible endpoint (moto). Queues created there are
// visible to every test: name them uniquely (SQSQueue does).
func SQSEndpoint(t testing.TB) string {
	t.Helper()
	return requireEnv(t, sqsEndpointVar)
}

// SQS returns a client of the test SQS endpoint, with throwaway credentials.
func SQS(t testing.TB) *sqs.Client {
	t.Helper()
	return sqs.New(sqs.Options{
		Region:       SQSRegion,
		BaseEndpoint: aws.String(SQSEndpoint(t)),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

var queueSeq atomic.Int64

// SQSQueue creates a queue named prefix, a unique suffix, and ".fifo" when attributes make
// it a FIFO queue (FifoQueue "true"); it returns the queue's URL.
func SQSQueue(t testing.TB, client *sqs.Client, prefix string, attributes map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), queueSeq.Add(1))
	if strings.EqualFold(attributes["FifoQueue"], "true") {
		name += ".fifo"
	}
	out, err := client.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attributes})
	if err != nil {
		t.Fatalf("testenv: create queue %s on %s: %v", name, SQSEndpoint(t), err)
	}
	return aws.ToString(out.QueueUrl)
}
